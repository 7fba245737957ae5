"""Fixtures shared by the whole test suite."""

import importlib
import shutil
import sys
import types

import pytest
from selenium.webdriver.chrome.options import Options
from torch import nn

_CHROMIUM_FLAGS = [
    "--headless=new",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-extensions",
]


def pytest_setup_options():
    """dash[testing]'s hook: run Chromium headless (no display here, nor in CI) and offline."""
    options = Options()
    for flag in _CHROMIUM_FLAGS:
        options.add_argument(flag)
    if shutil.which("chromium"):
        options.binary_location = shutil.which("chromium")
    return options


@pytest.fixture(scope="session")
def zennit():
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
