"""Small models in innsight's named-list format."""

DENSE_SPEC = {
    "input_dim": [3],
    "input_nodes": [1],
    "output_nodes": [2],
    "input_names": ["age", "bmi", "bp"],
    "output_names": ["low", "high"],
    "layers": [
        {"type": "Dense", "weight": [[1.0, 0.0, -1.0], [0.5, 0.5, 0.5]], "bias": [0.0, 0.1],
         "activation_name": "relu", "input_layers": 0, "output_layers": 2},
        {"type": "Dense", "weight": [[1.0, -1.0], [0.5, 2.0]], "bias": [0.0, 0.0],
         "activation_name": "softmax", "input_layers": 1, "output_layers": -1},
    ],
}  # fmt: skip
"""Three named features, a ReLU layer of 2 and a softmax over two named outputs."""
