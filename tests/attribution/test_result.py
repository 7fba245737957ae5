"""Result objects: get_result in its three forms, innsight's data frame, the summary."""

import numpy as np
import pandas as pd
import pytest
import torch

from attribution import AttributionResult, Converter, Gradient
from attribution._names import default_input_names

COLUMNS = [
    "data",
    "model_input",
    "model_output",
    "feature",
    "feature_2",
    "channel",
    "output_node",
    "value",
    "pred",
    "decomp_sum",
    "decomp_goal",
    "input_dimension",
]


def make_result(dims, n_outputs=(2,), idx=None, batch=3, connected=None, channels_first=True):
    """A result with values 0, 1, 2... per block, preds 100 + i and goals 200 + i."""
    idx = idx or [list(range(n)) for n in n_outputs]
    result, preds, goals = [], [], []
    counter = 0
    for k, selected in enumerate(idx):
        per_input = []
        for j, dim in enumerate(dims):
            if selected is None or (connected and (k, j) not in connected):
                per_input.append(None)
                continue
            size = batch * int(np.prod(dim)) * len(selected)
            per_input.append(
                torch.arange(counter, counter + size, dtype=torch.float64).reshape(
                    batch, *dim, len(selected)
                )
            )
            counter += size
        result.append(per_input)
        preds.append(
            None
            if selected is None
            else 100 + torch.arange(batch * len(selected), dtype=torch.float64).reshape(batch, -1)
        )
        goals.append(None if selected is None else preds[-1] + 100)
    return AttributionResult(
        method_name="Test", value_name="Relevance", result=result, preds=preds,
        decomp_goal=goals, output_idx=idx,
        input_names=[default_input_names(dim) for dim in dims],
        output_names=[[f"Y{i + 1}" for i in range(n)] for n in n_outputs],
        input_dim=list(dims), channels_first=channels_first,
    )  # fmt: skip


def test_get_result_is_one_array_for_one_input_and_output_layer():
    res = make_result([(4,)])
    array = res.get_result()
    assert isinstance(array, np.ndarray) and array.shape == (3, 4, 2)
    assert isinstance(res.get_result("torch"), torch.Tensor)
    np.testing.assert_array_equal(res.get_result("torch_tensor").numpy(), array)


def test_get_result_is_a_nested_dict_for_several_layers():
    res = make_result(
        [(4,), (2, 5)], n_outputs=(2, 3), idx=[[1], [0, 2]], connected={(0, 0), (0, 1), (1, 1)}
    )
    nested = res.get_result()
    assert list(nested) == ["Output_1", "Output_2"]
    assert nested["Output_1"]["Input_1"].shape == (3, 4, 1)
    assert nested["Output_1"]["Input_2"].shape == (3, 2, 5, 1)
    assert nested["Output_2"]["Input_1"] is None
    assert isinstance(res.get_result("torch")["Output_2"]["Input_2"], torch.Tensor)


def test_unknown_result_type():
    with pytest.raises(
        ValueError, match="type must be 'array', 'torch' or 'data.frame'; got 'list'"
    ):
        make_result([(4,)]).get_result("list")


def test_tabular_data_frame_has_innsights_columns_and_row_order():
    res = make_result([(4,)], n_outputs=(3,), idx=[[0, 2]])
    frame = res.get_result("data.frame")
    assert list(frame.columns) == [c for c in COLUMNS if c not in ("feature_2", "channel")]
    assert len(frame) == 3 * 4 * 2
    values = res.get_result()
    np.testing.assert_array_equal(frame["value"], values.ravel(order="F"))
    assert list(frame["data"][:4]) == ["data_1", "data_2", "data_3", "data_1"]
    assert list(frame["feature"][:4]) == ["X1", "X1", "X1", "X2"]
    assert list(frame["output_node"].unique()) == ["Y1", "Y3"]
    assert list(frame["data"].cat.categories) == ["data_1", "data_2", "data_3"]
    assert list(frame["feature"].cat.categories) == ["X1", "X2", "X3", "X4"]
    row = frame.iloc[13]  # data_2, X1, second selected node (Y3)
    assert (row["data"], row["feature"], row["output_node"]) == ("data_2", "X1", "Y3")
    assert row["pred"] == res.preds[0][1, 1]
    assert row["decomp_goal"] == res.decomp_goal[0][1, 1]
    assert row["decomp_sum"] == pytest.approx(values[1, :, 1].sum())
    assert set(frame["input_dimension"]) == {1}
    assert set(frame["model_input"]) == {"Input_1"} and set(frame["model_output"]) == {"Output_1"}


def test_image_data_frame_varies_data_then_channel_height_width_node():
    res = make_result([(2, 3, 2)])
    frame = res.get_result("data.frame")
    assert list(frame.columns) == COLUMNS
    assert len(frame) == 3 * 2 * 3 * 2 * 2
    first = (
        frame.iloc[[0, 3, 6, 18, 36]][["data", "channel", "feature", "feature_2", "output_node"]]
        .astype(str)
        .values.tolist()
    )
    assert first == [
        ["data_1", "C1", "H1", "W1", "Y1"],
        ["data_1", "C2", "H1", "W1", "Y1"],
        ["data_1", "C1", "H2", "W1", "Y1"],
        ["data_1", "C1", "H1", "W2", "Y1"],
        ["data_1", "C1", "H1", "W1", "Y2"],
    ]
    array = res.get_result()
    assert frame.iloc[6]["value"] == array[0, 0, 1, 0, 0]
    assert set(frame["input_dimension"]) == {3}


def test_signal_data_frame_has_channel_but_no_feature_2():
    frame = make_result([(2, 5)]).get_result("data.frame")
    assert "feature_2" not in frame and "channel" in frame
    assert list(frame["feature"].cat.categories) == [f"L{i}" for i in range(1, 6)]


def test_mixed_inputs_fill_missing_axes_with_nan_and_skip_unconnected_pairs():
    res = make_result(
        [(2, 3, 2), (4,)], n_outputs=(2, 2), idx=[[0], [1]], connected={(0, 0), (0, 1), (1, 1)}
    )
    frame = res.get_result("data.frame")
    blocks = frame.groupby(["model_output", "model_input"], observed=True).size()
    assert blocks.to_dict() == {
        ("Output_1", "Input_1"): 36,
        ("Output_1", "Input_2"): 12,
        ("Output_2", "Input_2"): 12,
    }
    tabular = frame[frame["model_input"] == "Input_2"]
    assert tabular["channel"].isna().all() and tabular["feature_2"].isna().all()
    assert list(frame["model_output"].cat.categories) == ["Output_1", "Output_2"]
    # decomp_sum is per input layer, not the total over input layers.
    image_sum = res.result[0][0][1].sum().item()
    first_image = frame[(frame["model_input"] == "Input_1") & (frame["data"] == "data_2")]
    assert first_image["decomp_sum"].unique().tolist() == [image_sum]


def test_channels_last_results_are_named_channels_first_in_the_data_frame():
    first = make_result([(2, 3, 4)])
    last = make_result([(3, 4, 2)], channels_first=False)
    last.input_dim = [(2, 3, 4)]
    last.input_names = first.input_names
    last.result = [[first.result[0][0].movedim(1, -2)]]
    pd.testing.assert_frame_equal(last.get_result("data.frame"), first.get_result("data.frame"))


def test_data_frame_of_a_real_method_sums_to_the_array():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    res = Gradient(
        Converter(model, input_names=["a", "b", "c"]), torch.randn(5, 3), times_input=True
    )
    frame = res.get_result("data.frame")
    assert list(frame["feature"].cat.categories) == ["a", "b", "c"]
    np.testing.assert_allclose(
        frame.groupby(["data", "output_node"], observed=True)["value"].sum().to_numpy(),
        res.get_result().sum(1).ravel(),
        rtol=1e-6,
    )
    assert frame["decomp_goal"].notna().all()


def test_print_summarises_fields_outputs_and_result():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    x = torch.randn(5, 3)
    x[0, 0] = float("nan")
    text = repr(
        Gradient(Converter(model, output_names=["yes", "no"]), x, output_idx=[1], times_input=True)
    )
    assert text.startswith("── Method Gradient")
    assert "times_input: True (→ Gradient×Input method)" in text
    assert "output_idx: 1 (→ corresponding labels: 'no')" in text
    assert "ignore_last_act: True" in text and "dtype: 'float'" in text
    assert "Shape: (5, 3, 1)" in text
    assert "Number of NaN values: 1" in text
    assert "Range: min:" in text


def test_print_marks_unconnected_pairs():
    res = make_result([(4,), (2,)], n_outputs=(2, 2), connected={(0, 0), (0, 1), (1, 1)})
    text = repr(res)
    assert "Output layer 2, input layer 1:\n    (not connected to output layer 2)" in text
    assert "output_idx (output layer 2): 0, 1" in text
