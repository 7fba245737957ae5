"""The shipped demo models: they load without scikit-learn, convert, and their documented
metrics and ground truth hold on the stored test data."""

import importlib
import json
import sys

import numpy as np
import pytest
import torch

import demo_data
from attribution import LRP, Converter, Gradient
from demo_data import DEMOS, FILES, load_demo

EXPECTED = ("iris", "diabetes", "signals", "digits", "digits_table")


@pytest.fixture(scope="module")
def demos():
    loaded = {name: load_demo(name) for name in DEMOS}
    return {name: (demo, demo.converter()) for name, demo in loaded.items()}


def _torch_outputs(demo):
    with torch.no_grad():
        out = demo.model(*demo.tensors())
    return list(out) if isinstance(out, tuple) else [out]


def test_the_five_demos_are_listed_and_their_files_are_small():
    assert DEMOS == EXPECTED
    catalogue = json.loads((FILES / "demos.json").read_text(encoding="utf-8"))
    assert [entry["name"] for entry in catalogue["demos"]] == list(EXPECTED)
    for entry in catalogue["demos"]:
        for file in entry["files"].values():
            assert (FILES / file).is_file()
    total = sum(path.stat().st_size for path in FILES.iterdir())
    assert total < 3 * 2**20, f"demo files take {total / 2**20:.1f} MiB"


def test_unknown_name_lists_the_demos():
    with pytest.raises(ValueError, match="No demo named 'mnist'.*'iris', 'diabetes'"):
        load_demo("mnist")


def test_loading_needs_no_scikit_learn(monkeypatch):
    for module in [m for m in sys.modules if m == "sklearn" or m.startswith("sklearn.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "sklearn", None)  # any import of it fails
    for module in [m for m in sys.modules if m == "demo_data" or m.startswith("demo_data.")]:
        monkeypatch.delitem(sys.modules, module)
    fresh = importlib.import_module("demo_data")
    assert fresh is not demo_data
    for name in fresh.DEMOS:
        demo = fresh.load_demo(name)
        assert not any(module.training for module in demo.model.modules())
        assert all(x.dtype == np.float32 for x in demo.inputs)
    with pytest.raises(ImportError):
        importlib.import_module("sklearn")


@pytest.mark.parametrize("name", EXPECTED)
def test_demo_converts_and_the_graph_reproduces_the_model(demos, name):
    demo, conv = demos[name]
    expected = _torch_outputs(demo)
    got = conv.model(*demo.tensors())
    assert len(got) == len(expected) == len(demo.output_names)
    for converted, original in zip(got, expected, strict=True):
        torch.testing.assert_close(converted.detach(), original, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", EXPECTED)
def test_metadata_matches_the_converter_and_the_data(demos, name):
    demo, conv = demos[name]
    meta = demo.meta
    n = meta["sizes"]["test"]
    assert meta["architecture"] == type(demo.model).__name__
    assert conv.input_dim == demo.input_dim == [x.shape[1:] for x in demo.inputs]
    assert conv.input_names == demo.input_names
    assert conv.output_names == demo.output_names
    assert [dim[0] for dim in conv.output_dim] == [len(names) for names in demo.output_names]
    assert all(x.dtype == np.float32 and x.flags.c_contiguous and len(x) == n for x in demo.inputs)
    assert len(demo.labels) == len(meta["output_tasks"]) == len(demo.metric)
    for labels, task in zip(demo.labels, meta["output_tasks"], strict=True):
        assert len(labels) == n
        assert labels.dtype == (np.int64 if task == "classification" else np.float32)
    assert meta["sizes"]["parameters"] == sum(p.numel() for p in demo.model.parameters())


@pytest.mark.parametrize("name", EXPECTED)
def test_documented_metric_is_the_metric_on_the_stored_test_set(demos, name):
    demo, _ = demos[name]
    for k, (pred, labels, metric) in enumerate(
        zip(_torch_outputs(demo), demo.labels, demo.metric, strict=True), start=1
    ):
        pred = pred.numpy().astype(np.float64)
        assert metric["output"] == f"Output_{k}"
        if metric["name"] == "accuracy":
            value = np.mean(pred.argmax(axis=1) == labels)
            assert metric["value"] == value
        else:
            assert metric["name"] == "r2"
            target = labels.astype(np.float64)
            value = 1 - np.sum((target - pred[:, 0]) ** 2) / np.sum((target - target.mean()) ** 2)
            assert metric["value"] == pytest.approx(value, abs=1e-6)


@pytest.mark.parametrize("name", EXPECTED)
def test_methods_run_on_the_demo(demos, name):
    demo, conv = demos[name]
    x = [inputs[:4] for inputs in demo.inputs]
    x = x[0] if len(x) == 1 else x
    for result in (LRP(conv, x), Gradient(conv, x)):
        arrays = result.get_result("array")
        if isinstance(arrays, dict):
            arrays = [a for per_input in arrays.values() for a in per_input.values()]
        else:
            arrays = [arrays]
        assert all(a is not None and np.isfinite(a).all() and len(a) == 4 for a in arrays)


def test_a_standalone_converter_takes_the_metadata_as_it_is():
    demo = load_demo("digits_table")
    conv = Converter(
        demo.model,
        input_dim=demo.meta["input_dim"],
        input_names=demo.meta["input_names"],
        output_names=demo.meta["output_names"],
    )
    assert conv.input_names[1] == [["addend", "even_hint", "noise"]]
    assert conv.output_names[1] == ["digit_plus_addend"]


def _motif_mask(demo):
    length = demo.meta["ground_truth"]["motif_length"]
    mask = np.zeros(demo.inputs[0].shape, dtype=bool)
    channels, starts = demo.extras["motif_channel"], demo.extras["motif_start"]
    for i, (channel, start) in enumerate(zip(channels, starts, strict=True)):
        mask[i, channel, start : start + length] = True
    return mask


def test_signal_ground_truth_describes_the_stored_signals(demos):
    demo, _ = demos["signals"]
    x, truth = demo.inputs[0], demo.meta["ground_truth"]
    np.testing.assert_array_equal(demo.extras["motif_channel"], demo.labels[0])
    assert demo.extras["motif_start"].min() >= 0
    assert demo.extras["motif_start"].max() + truth["motif_length"] <= x.shape[2]
    windows = x[_motif_mask(demo)].reshape(len(x), truth["motif_length"])
    # Noise, the slow waves and the distractor average out; the planted motif remains.
    np.testing.assert_allclose(windows.mean(axis=0), truth["motif"], atol=0.3)
    channels = demo.input_names[0][0]
    classes = demo.output_names[0]
    assert [truth["channel_of_class"][c] for c in classes] == channels


@pytest.mark.parametrize("method", ["gradient_x_input", "lrp"])
def test_signal_attribution_concentrates_on_the_planted_motif(demos, method):
    demo, conv = demos["signals"]
    x, labels = demo.inputs[0], demo.labels[0]
    rows = np.arange(len(x))
    correct = conv.model(torch.from_numpy(x))[0].detach().numpy().argmax(axis=1) == labels
    assert correct.mean() > 0.9
    if method == "lrp":
        result = LRP(conv, x, output_idx=[0, 1, 2])
    else:
        result = Gradient(conv, x, times_input=True, output_idx=[0, 1, 2])
    relevance = np.abs(result.get_result("array")[rows, ..., labels])  # of the true class
    mask = _motif_mask(demo)
    inside = np.array([r[m].mean() for r, m in zip(relevance, mask, strict=True)])[correct]
    outside = np.array([r[~m].mean() for r, m in zip(relevance, mask, strict=True)])[correct]
    # The window is 12 of 192 values; per value it gets many times the rest's attribution.
    assert inside.mean() > 5 * outside.mean()
    assert np.mean(inside > outside) > 0.95
