"""The converted graph: order checks, running with and without kept tensors, fusing."""

from __future__ import annotations

import pytest
import torch

from attribution.converter.graph import ConvertedModel, Node, Ref, fuse_activations
from attribution.layers import Activation, ActivationLayer
from attribution.layers.dense import DenseLayer
from attribution.layers.merge import AddLayer
from attribution.layers.pooling import GlobalAvgPoolLayer


def dense(n_in: int, n_out: int) -> DenseLayer:
    return DenseLayer(torch.randn(n_out, n_in), torch.randn(n_out))


def node(layer, *inputs: Ref, key: str = "") -> Node:
    return Node(layer, tuple(inputs), origin=f"test {key}", key=key)


def test_ref_prints_one_based():
    assert str(Ref("input", 0)) == "input 1"
    assert str(Ref("layer", 2)) == "layer 3"


def test_node_describe():
    assert node(dense(2, 2), Ref("input", 0), key="fc").describe() == "Dense_Layer (test fc)"


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        pytest.param(
            Ref("layer", 1),
            r"layer 2 \(test b\) reads layer 2, which does not come before it: the graph has a "
            r"cycle or a dangling reference\.",
            id="itself",
        ),
        pytest.param(Ref("layer", 5), r"layer 2 \(test b\) reads layer 6", id="later"),
        pytest.param(Ref("input", 1), r"layer 2 \(test b\) reads input 2", id="missing-input"),
    ],
)
def test_nodes_must_be_in_topological_order(ref, message):
    nodes = [node(dense(3, 3), Ref("input", 0), key="a"), node(dense(3, 3), ref, key="b")]
    with pytest.raises(ValueError, match=message):
        ConvertedModel(nodes, 1, [1])


def residual_graph() -> ConvertedModel:
    """x -> dense+relu -> add(x, .) -> dense; two outputs: the sum and the last dense."""
    first = dense(3, 3)
    first.activation = Activation("relu")
    nodes = [
        node(first, Ref("input", 0), key="a"),
        node(AddLayer(), Ref("input", 0), Ref("layer", 0), key="b"),
        node(dense(3, 2), Ref("layer", 1), key="c"),
    ]
    return ConvertedModel(nodes, 1, [1, 2]).double()


def test_run_follows_the_graph_and_keeps_outputs_read_later():
    model = residual_graph()
    first, _, last = model.layers
    x = torch.randn(4, 3, dtype=torch.float64)
    hidden = x + torch.relu(first.preactivation(x))
    pass_ = model.run([x])
    torch.testing.assert_close(pass_.outputs[0], hidden)
    torch.testing.assert_close(pass_.outputs[1], last.preactivation(hidden))
    torch.testing.assert_close(pass_.preactivations[0], hidden)
    assert pass_.layer_inputs is None
    assert [out.shape for out in model(x)] == [(4, 3), (4, 2)]


def test_run_with_keep_holds_every_layers_tensors():
    model = residual_graph()
    x = torch.randn(4, 3, dtype=torch.float64)
    pass_ = model.run([x], keep=True)
    assert [len(args) for args in pass_.layer_inputs] == [1, 2, 1]
    torch.testing.assert_close(pass_.layer_inputs[1][0], x)
    torch.testing.assert_close(pass_.layer_outputs[0], torch.relu(pass_.layer_preactivations[0]))
    torch.testing.assert_close(pass_.layer_inputs[2][0], pass_.layer_outputs[1])


def test_record_shapes():
    model = residual_graph()
    model.record_shapes([(3,)])
    assert [(n.in_dims, n.out_dim) for n in model.nodes] == [
        ([(3,)], (3,)),
        ([(3,), (3,)], (3,)),
        ([(3,)], (2,)),
    ]


def test_failing_layer_is_named():
    model = residual_graph()
    with pytest.raises(
        RuntimeError, match=r"layer 1, Dense_Layer \(test a\), failed on inputs of shape \(2, 4\)"
    ):
        model.run([torch.randn(2, 4, dtype=torch.float64)])
    with pytest.raises(ValueError, match=r"layer 1, Dense_Layer \(test a\), failed"):
        model.record_shapes([(4,)])


def test_dtype_follows_to():
    model = residual_graph()
    assert model.dtype == torch.float64
    assert model.float().dtype == torch.float32
    empty = ConvertedModel([node(GlobalAvgPoolLayer(), Ref("input", 0))], 1, [0])
    assert empty.dtype == torch.float64
    assert empty.to(torch.float32).dtype == torch.float32
    assert "_precision" not in empty.state_dict()


def activation(name: str, source: Ref, key: str) -> Node:
    return node(ActivationLayer(Activation(name)), source, key=key)


def test_fuse_an_activation_into_the_dense_layer_before_it():
    nodes = [node(dense(3, 3), Ref("input", 0), key="fc"), activation("tanh", Ref("layer", 0), "t")]
    fused, outputs = fuse_activations(nodes, [1])
    assert len(fused) == 1
    assert outputs == [0]
    assert fused[0].layer.activation.name == "tanh"
    assert (fused[0].key, fused[0].origin) == ("t", "test fc + test t")


def test_fusing_renumbers_later_references():
    nodes = [
        node(dense(3, 3), Ref("input", 0), key="fc"),
        activation("relu", Ref("layer", 0), "r"),
        node(AddLayer(), Ref("layer", 1), Ref("input", 0), key="add"),
        activation("relu", Ref("layer", 2), "r2"),
    ]
    fused, outputs = fuse_activations(nodes, [3])
    assert [n.key for n in fused] == ["r", "add", "r2"]
    assert fused[1].inputs == (Ref("layer", 0), Ref("input", 0))
    assert fused[2].inputs == (Ref("layer", 1),)
    assert outputs == [2]


@pytest.mark.parametrize(
    ("nodes", "outputs"),
    [
        pytest.param(
            [node(dense(3, 3), Ref("input", 0)), activation("relu", Ref("layer", 0), "r")],
            [0, 1],
            id="dense-is-an-output",
        ),
        pytest.param(
            [
                node(dense(3, 3), Ref("input", 0)),
                activation("relu", Ref("layer", 0), "r"),
                node(AddLayer(), Ref("layer", 0), Ref("layer", 1)),
            ],
            [2],
            id="dense-read-twice",
        ),
        pytest.param(
            [node(GlobalAvgPoolLayer(), Ref("input", 0)), activation("relu", Ref("layer", 0), "r")],
            [1],
            id="after-pooling",
        ),
        pytest.param([activation("relu", Ref("input", 0), "r")], [0], id="on-the-input"),
    ],
)
def test_activations_that_are_not_fused(nodes, outputs):
    fused, new_outputs = fuse_activations(list(nodes), outputs)
    assert len(fused) == len(nodes)
    assert new_outputs == outputs
    assert isinstance(fused[-1].layer, (ActivationLayer, AddLayer))
