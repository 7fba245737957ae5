"""``seed``: the stochastic methods draw from their own generator, reproducibly."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from attribution import (
    Converter,
    DeepSHAP,
    ExpectedGradient,
    SmoothGrad,
    torch_expgrad,
    torch_smoothgrad,
)

_DRAWS = torch.Generator().manual_seed(1)
DATA = torch.randn(4, 5, dtype=torch.float64, generator=_DRAWS)
REFERENCES = torch.randn(9, 5, dtype=torch.float64, generator=_DRAWS)

METHODS = {
    "SmoothGrad": (SmoothGrad, {"n": 4, "noise_level": 0.5}),
    "ExpectedGradient": (ExpectedGradient, {"n": 4, "data_ref": REFERENCES}),
    "DeepSHAP": (DeepSHAP, {"limit_ref": 3, "data_ref": REFERENCES}),
    "torch_smoothgrad": (torch_smoothgrad, {"n": 4, "noise_level": 0.5}),
    "torch_expgrad": (torch_expgrad, {"n": 4, "data_ref": REFERENCES}),
}
"""Every method that draws random numbers, with arguments that make it draw."""

SEED = 2024


def model_for(name: str) -> nn.Module | Converter:
    """A small fixed model (from a manual seed): the module for the torch_* functions,
    converted for the classes."""
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 3)).double().eval()
    return module if name.startswith("torch_") else Converter(module)


def run(name: str, model: nn.Module | Converter, **kwargs):
    """What method ``name`` returns for :data:`DATA`."""
    method, arguments = METHODS[name]
    return method(model, DATA, dtype="double", **arguments, **kwargs)


def explain(name: str, model: nn.Module | Converter, **kwargs) -> torch.Tensor:
    """The result tensor of method ``name`` on :data:`DATA`."""
    result = run(name, model, **kwargs)
    return result if name.startswith("torch_") else result.get_result("torch")


def save_all(path: str) -> None:
    """Every method's result with :data:`SEED`, as ``.npz`` (run in a fresh process)."""
    np.savez(path, **{name: explain(name, model_for(name), seed=SEED).numpy() for name in METHODS})


@pytest.fixture(params=list(METHODS))
def name(request):
    return request.param


@pytest.fixture
def model(name):
    return model_for(name)


def test_the_same_seed_gives_identical_results(name, model):
    assert torch.equal(explain(name, model, seed=SEED), explain(name, model, seed=SEED))


def test_different_seeds_give_different_results(name, model):
    assert not torch.equal(explain(name, model, seed=1), explain(name, model, seed=2))


def test_a_seed_leaves_the_global_generator_alone(name, model):
    state = torch.get_rng_state()
    explain(name, model, seed=SEED)
    assert torch.equal(torch.get_rng_state(), state)


def test_without_a_seed_the_global_generator_draws(name, model):
    torch.manual_seed(7)
    first = explain(name, model)
    torch.manual_seed(7)
    assert torch.equal(explain(name, model, seed=None), first)
    torch.manual_seed(8)
    assert not torch.equal(explain(name, model), first)


@pytest.fixture(scope="module")
def fresh_process_results(tmp_path_factory) -> dict[str, np.ndarray]:
    path = tmp_path_factory.mktemp("seeds") / "results.npz"
    here = Path(__file__).parent
    code = f"import sys; sys.path.insert(0, {str(here)!r}); import test_seeds; "
    code += f"test_seeds.save_all({str(path)!r})"
    root = here.parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, timeout=300)
    with np.load(path) as saved:
        return dict(saved)


def test_a_fresh_process_computes_the_same_result(name, model, fresh_process_results):
    torch.rand(3)  # the global generator is elsewhere than in the fresh process
    np.testing.assert_array_equal(
        explain(name, model, seed=SEED).numpy(), fresh_process_results[name]
    )


@pytest.mark.parametrize(
    ("seed", "allowed"),
    [(-1, ">= 0"), (1.5, ">= 0"), (True, ">= 0"), ("3", ">= 0"), (2**64, "from 0 to 2**64 - 1")],
)
def test_bad_seeds_are_named(name, model, seed, allowed):
    message = f"seed must be an integer {allowed}; got {seed!r}."
    with pytest.raises(ValueError, match=re.escape(message)):
        explain(name, model, seed=seed)


def test_the_largest_seed_is_taken(name, model):
    explain(name, model, seed=2**64 - 1)


@pytest.mark.parametrize("method", ["SmoothGrad", "ExpectedGradient", "DeepSHAP"])
def test_the_seed_is_a_printed_field(method):
    converter = model_for(method)
    assert f"  • seed: {SEED}\n" in repr(run(method, converter, seed=SEED))
    assert "  • seed: None\n" in repr(run(method, converter))
