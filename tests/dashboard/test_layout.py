"""The page's layout builders: every id is on the page, parameter controls per method."""

from dashboard import ids
from dashboard.layout import build_layout
from dashboard.layout.parameters import parameter_controls


def _ids(components) -> list:
    """Ids in a component tree, or in a list of them (the component itself included)."""
    roots = components if isinstance(components, list) else [components]
    return [
        c.id
        for root in roots
        for c in [root, *root._traverse()]
        if getattr(c, "id", None) is not None
    ]


def test_every_named_id_is_on_the_page_once():
    found = _ids(build_layout())
    named = [value for name, value in vars(ids).items() if name.isupper()]
    assert sorted(named) == sorted(set(named))
    for component_id in named:
        assert found.count(component_id) == 1, component_id


def test_lrp_controls_cover_the_rule_layer_types_of_the_model(demo_model):
    found = _ids(parameter_controls("LRP", demo_model("digits")))
    layers = {i["layer"] for i in found if isinstance(i, dict) and i["type"] == "rule_name"}
    assert layers == {"Dense_Layer", "Conv2D_Layer", "MaxPool2D_Layer"}
    assert {
        i["layer"] for i in found if isinstance(i, dict) and i["type"] == "rule_param"
    } == layers
    assert ids.parameter("winner_takes_all") in found


def test_controls_start_at_innsights_defaults(demo_model):
    controls = {
        c.id["name"]: c.value
        for c in _controls(parameter_controls("IntegratedGradient", demo_model("iris")))
    }
    assert controls == {"times_input": True, "n": 50, "reference": "zeros",
                        "reference_row": 0, "ignore_last_act": True, "dtype": "float"}  # fmt: skip


def test_unconverted_models_get_no_ignore_last_act(scripted_model):
    names = [c.id["name"] for c in _controls(parameter_controls("SmoothGrad", scripted_model))]
    assert names == ["times_input", "n", "noise_level", "seed", "dtype"]


def test_no_method_no_controls(demo_model):
    assert _ids(parameter_controls(None, demo_model("iris"))) == []


def _controls(components) -> list:
    return [
        c
        for component in components
        for c in [component, *component._traverse()]
        if isinstance(getattr(c, "id", None), dict) and c.id.get("type") == "parameter"
    ]


def _model_upload(layout):
    return next(c for c in layout._traverse() if getattr(c, "id", None) == ids.MODEL_UPLOAD)


def _offered(layout) -> set[str]:
    """The suffixes the model upload names (it filters nothing: the server answers all)."""
    upload = _model_upload(layout)
    assert getattr(upload, "accept", None) is None
    text = str(upload.children.children[0])
    return set(text[text.index("(") + 1 : text.index(")")].split(", "))


def test_the_model_upload_offers_torchscript_only_on_a_trusting_server():
    offered = _offered(build_layout())
    assert {".pt2", ".json"} <= offered
    assert ".pt" not in offered and ".ts" not in offered
    assert {".pt", ".ts"} <= _offered(build_layout(trust_torchscript=True))
