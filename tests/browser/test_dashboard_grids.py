"""Grids that can be read, in the browser: the rendered figures' panel sizes, info strips
outside the panels, row strips beside the last column, a Global graph that scrolls
sideways instead of squeezing, and one reference-row control that a new result resets."""

import pytest
from dash.testing.wait import until

import demo_data
from dashboard import ids

pytestmark = pytest.mark.browser

DIGITS = demo_data.metadata("digits")
CLASSES = DIGITS["output_names"][0]
MIN_IMAGE_PX = 150  # attribution.plots._sizes.IMAGE_MIN_PX

_RENDERED = """
const plot = document.querySelector(arguments[0] + ' .js-plotly-plot');
if (!plot || !plot._fullLayout || !plot.querySelector('.main-svg')) { return null; }
const full = plot._fullLayout;
const origin = plot.getBoundingClientRect();
const relative = r => [r.left - origin.left, r.top - origin.top,
                       r.right - origin.left, r.bottom - origin.top];
const panels = Object.keys(full).filter(k => /^xaxis\\d*$/.test(k)).map(k => {
    const xa = full[k], ya = full['y' + k.slice(1)];
    return [xa._offset, ya._offset, xa._offset + xa._length, ya._offset + ya._length];
});
const annotations = [...plot.querySelectorAll('.annotation')].map(
    a => ({text: a.textContent, box: relative(a.getBoundingClientRect())}));
const scroller = plot.closest('[style*="overflow"]');
return {
    width: full.width, height: full.height, layoutWidth: plot.layout.width,
    drawnWidth: plot.querySelector('.main-svg').getBoundingClientRect().width,
    panels: panels, annotations: annotations,
    menus: (plot.layout.updatemenus || []).length,
    menuLabels: annotations.map(a => a.text),
    visible: plot._fullData.filter(t => t.visible === true).map(t => t.name || ''),
    scroll: scroller ? [scroller.scrollWidth, scroller.clientWidth] : null,
};
"""

_VALUE = """
const state = window.store.getState();
let node = state.layout;
for (const key of state.paths.strs[arguments[0]]) { node = node[key]; }
return node.props.value === undefined ? null : node.props.value;
"""


def rendered(page, graph_id, trace_type, check=lambda found: True):
    """The drawn figure's layout as plotly rendered it, once it has a ``trace_type``
    trace and passes ``check``."""
    page.wait_figure(graph_id, trace_type, timeout=60)

    def read():
        found = page.driver.execute_script(_RENDERED, f"#{graph_id}")
        return found if found and check(found) else None

    return until(read, timeout=20, msg=f"#{graph_id} was not drawn as expected")


def value(page, component_id):
    return page.driver.execute_script(_VALUE, component_id)


def overlap(a, b):
    return a[0] < b[2] - 0.5 and b[0] < a[2] - 0.5 and a[1] < b[3] - 0.5 and b[1] < a[3] - 0.5


def centre(page, component_id):
    """Scroll a control to the middle of the window (the column's cards move as they
    fill, and a click aimed at the bottom of the window can land on another card)."""
    page.driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center'});", page.wait_for(component_id)
    )


def compute(page, demo_title, method, outputs=None):
    page.choose(ids.DEMO_SELECT, demo_title)
    page.wait_text(ids.MODEL_INFO, method)
    centre(page, ids.METHOD_SELECT)
    page.choose(ids.METHOD_SELECT, method)
    if outputs is not None:
        page.choose_many(ids.OUTPUT_SELECT, outputs)
    centre(page, ids.COMPUTE_BUTTON)
    page.click(ids.COMPUTE_BUTTON)
    page.wait_text(ids.STATUS, "Done.", timeout=90)


def test_four_rows_of_ten_digits_are_readable_and_the_global_grid_scrolls(page):
    compute(page, DIGITS["title"], "Gradient")
    assert len(page.selected(ids.OUTPUT_SELECT)) == 10
    page.choose_many(ids.INDIVIDUAL_ROWS, ["data_1", "data_2", "data_3", "data_4"])
    page.choose_many(ids.INDIVIDUAL_OUTPUTS, CLASSES)
    grid = rendered(page, ids.INDIVIDUAL_GRAPH, "heatmap", lambda f: len(f["panels"]) == 40)

    # Every panel is drawn at least 150 px a side, square as the 8×8 images; the figure
    # keeps the width its layout asks for instead of squeezing to the page.
    for x0, y0, x1, y1 in grid["panels"]:
        assert x1 - x0 >= MIN_IMAGE_PX - 1 and y1 - y0 >= MIN_IMAGE_PX - 1
        assert abs((x1 - x0) - (y1 - y0)) <= 1
    assert grid["layoutWidth"] == grid["width"] > 10 * MIN_IMAGE_PX
    assert abs(grid["drawnWidth"] - grid["width"]) <= 1

    # The info strips (Pred./Sum/Goal) and the row strips cover no panel; the row strips
    # are right of the last column.
    infos = [a["box"] for a in grid["annotations"] if a["text"].startswith("Pred.")]
    rows = [a["box"] for a in grid["annotations"] if a["text"].startswith("data_")]
    assert len(infos) == 40 and len(rows) == 4
    for box in infos + rows:
        assert not any(overlap(box, panel) for panel in grid["panels"]), box
    right_edge = max(panel[2] for panel in grid["panels"])
    assert all(box[0] >= right_edge for box in rows)

    # Global: ten quantile maps of at least 150 px in a container that scrolls sideways.
    page.open_tab("Global")
    page.choose_many(ids.GLOBAL_OUTPUTS, CLASSES)
    summary = rendered(page, ids.GLOBAL_GRAPH, "heatmap", lambda f: len(f["panels"]) == 10)
    for x0, y0, x1, y1 in summary["panels"]:
        assert min(x1 - x0, y1 - y0) >= MIN_IMAGE_PX - 1
    assert abs(summary["drawnWidth"] - summary["width"]) <= 1
    scroll_width, client_width = summary["scroll"]
    assert scroll_width >= summary["width"] > client_width  # wider than its column: scrolls

    page.settle()
    assert page.duo.get_logs() == []


def test_one_reference_row_control_reset_by_another_result(page):
    compute(page, demo_data.metadata("iris")["title"], "Gradient")
    page.open_tab("Global")
    plain = rendered(page, ids.GLOBAL_GRAPH, "box")
    assert "Data point" not in plain["menuLabels"]  # the dropdown above is the one control
    assert not any(name.startswith("selected_points") for name in plain["visible"])

    page.choose(ids.REFERENCE_ROW, "data_3")
    marked = rendered(page, ids.GLOBAL_GRAPH, "box", lambda f: "selected_points_3" in f["visible"])
    assert [n for n in marked["visible"] if n.startswith("selected_points")] == [
        "selected_points_3"
    ]
    assert "Data point" not in marked["menuLabels"]

    # Another model and data: the reference row starts empty again, and no red row is drawn.
    compute(page, demo_data.metadata("diabetes")["title"], "Gradient")
    until(lambda: value(page, ids.REFERENCE_ROW) is None, timeout=10)
    page.open_tab("Individual")
    page.open_tab("Global")
    fresh = rendered(
        page, ids.GLOBAL_GRAPH, "box",
        lambda f: any(a["text"] == "progression" for a in f["annotations"])
        and not any(n.startswith("selected_points") for n in f["visible"]),
    )  # fmt: skip
    assert "Data point" not in fresh["menuLabels"]

    page.settle()
    assert page.duo.get_logs() == []
