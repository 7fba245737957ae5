"""innsight for Python: feature attribution for neural networks on torch.

The public API mirrors the R package innsight (with 0-based indices)::

    from attribution import Converter, Gradient
    conv = Converter(model, input_dim=(5,))
    res = Gradient(conv, x, output_idx=[0, 1])
    res.get_result("data.frame")
"""

# Readers of other libraries' models register themselves (each imports its library only
# when used; the extras onnx, keras and sklearn install them).
from attribution.converter import keras_format, onnx_format, sklearn_format  # noqa: F401
from attribution.converter.converter import Converter
from attribution.errors import MissingDependencyError, UnsupportedLayerError
from attribution.methods.connection_weights import ConnectionWeights
from attribution.methods.deeplift import DeepLift, DeepSHAP
from attribution.methods.gradient import ExpectedGradient, Gradient, IntegratedGradient, SmoothGrad
from attribution.methods.lime import LIME
from attribution.methods.lrp import LRP
from attribution.methods.shap import SHAP
from attribution.methods.torch_direct import (
    torch_expgrad,
    torch_grad,
    torch_intgrad,
    torch_smoothgrad,
)
from attribution.result import AttributionResult

__version__ = "0.1.0"

__all__ = [
    "LIME",
    "LRP",
    "SHAP",
    "AttributionResult",
    "ConnectionWeights",
    "Converter",
    "DeepLift",
    "DeepSHAP",
    "ExpectedGradient",
    "Gradient",
    "IntegratedGradient",
    "MissingDependencyError",
    "SmoothGrad",
    "UnsupportedLayerError",
    "__version__",
    "torch_expgrad",
    "torch_grad",
    "torch_intgrad",
    "torch_smoothgrad",
]
