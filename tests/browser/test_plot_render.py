"""Plot figures render in a real browser (headless Chromium) without console errors."""

import pytest
import torch
from dash import Dash, dcc, html
from torch import nn

from attribution import Converter, Gradient

pytestmark = pytest.mark.browser


class _ImageAndTable(nn.Module):
    """Two inputs (a 1×6×6 image and 3 features), two output heads."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.image_head = nn.Linear(2 * 4 * 4, 4)
        self.table_head = nn.Linear(3, 4)
        self.second = nn.Linear(3, 2)

    def forward(self, image, table):
        features = self.image_head(torch.flatten(torch.relu(self.conv(image)), 1))
        return features + self.table_head(table), self.second(table)


@pytest.fixture(scope="module")
def figures():
    torch.manual_seed(0)
    conv = Converter(_ImageAndTable().eval(), input_dim=[(1, 6, 6), (3,)])
    data = [torch.randn(12, 1, 6, 6), torch.randn(12, 3)]
    res = Gradient(conv, data, times_input=True, output_idx=[[0, 1], [1]])
    return {
        "grid": res.plot(data_idx=[0, 5], output_idx=[[0, 1], [1]]),
        "global": res.plot_global(output_idx=[[0], [1]], ref_data_idx=2),
    }


def _page(figures):
    app = Dash(__name__)
    app.layout = html.Div([dcc.Graph(id=name, figure=fig) for name, fig in figures.items()])
    return app


def _plot_data(dash_duo, graph_id):
    return dash_duo.driver.execute_script(
        f"return document.querySelector('#{graph_id} .js-plotly-plot')._fullData"
        ".map(t => [t.type, t.visible])"
    )


def test_grid_and_global_figures_render_without_console_errors(dash_duo, figures):
    dash_duo.start_server(_page(figures))
    for graph_id in figures:
        dash_duo.wait_for_element(f"#{graph_id} .main-svg", timeout=20)
    grid = _plot_data(dash_duo, "grid")
    # 2 rows × (2 nodes of output 1 × 2 inputs + 1 node of output 2 × 2 inputs); the image
    # input does not reach output 2, so that column is an empty panel.
    assert [t for t, _ in grid].count("heatmap") == 2 * 2
    assert [t for t, _ in grid].count("bar") == 2 * 3
    strips = dash_duo.driver.execute_script(
        "return [...document.querySelectorAll('#grid .annotation-text')].map(a => a.textContent)"
    )
    assert {"Input_1", "Input_2", "Output_1: Y1", "Output_2: Y2", "data_1", "data_6"} <= set(strips)
    assert [t for t, v in _plot_data(dash_duo, "global") if v is True].count("box") == 2
    assert dash_duo.get_logs() == []


def test_image_hover_shows_the_raw_value(dash_duo, figures):
    dash_duo.start_server(_page({"grid": figures["grid"]}))
    dash_duo.wait_for_element("#grid .main-svg", timeout=20)
    raw = float(figures["grid"].data[0].customdata[2][3])
    text = dash_duo.driver.execute_script(
        "const gd = document.querySelector('#grid .js-plotly-plot');"
        "Plotly.Fx.hover(gd, {xval: 3, yval: 2}, 'xy');"
        "return [...gd.querySelectorAll('.hovertext')].map(h => h.textContent).join('|');"
    )
    assert f"{raw:.4g}" in text
    assert "Height: H3" in text and "Width: W4" in text
    assert dash_duo.get_logs() == []
