"""Peer libraries that need help to import here (shared by the tests and the benchmarks)."""

import importlib
import sys
import types

from torch import nn


def import_zennit() -> types.ModuleType:
    """Zennit (a test-only reference for LRP), imported without a working torchvision.

    Zennit's ``zennit.torchvision`` module imports torchvision's ResNet block classes at
    load time, for canonizers of torchvision models; torchvision does not install beside
    the CPU torch these machines use. Where it is missing, two stand-in classes take its
    place; the rules and composites compared against here do not touch them.
    """
    try:
        importlib.import_module("torchvision.models.resnet")
    except ImportError:
        resnet = types.ModuleType("torchvision.models.resnet")
        resnet.Bottleneck = type("Bottleneck", (nn.Module,), {})
        resnet.BasicBlock = type("BasicBlock", (nn.Module,), {})
        models = types.ModuleType("torchvision.models")
        models.resnet = resnet
        package = types.ModuleType("torchvision")
        package.models = models
        sys.modules.update(
            {
                "torchvision": package,
                "torchvision.models": models,
                "torchvision.models.resnet": resnet,
            }
        )
    return importlib.import_module("zennit")
