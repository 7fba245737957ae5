"""Model files: the readers, what is refused (nothing is unpickled), and load_model."""

from __future__ import annotations

import io
import json
import pickle
import zipfile

import pytest
import torch
from support.specs import DENSE_SPEC
from support.tripwire import TRIPPED, Tripwire
from torch import nn

from attribution import Converter, UnsupportedLayerError, torch_grad
from attribution.converter import files
from attribution.converter.files import (
    ExportedModule,
    ModelFormat,
    ModelObjectKind,
    ScriptedModule,
    model_format,
    model_object_kind,
    model_suffixes,
    read_model_file,
    register_model_format,
    register_model_object,
)
from attribution.converter.loading import load_model
from attribution.methods.catalogue import applicable

UNCONVERTED_METHODS = applicable(converted=False, differentiable=True)
"""The methods that explain a model that does not convert."""

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning")


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(72, 3)).eval()


def _export(model: nn.Module, example: torch.Tensor, dynamic: bool) -> bytes:
    shapes = ({0: torch.export.Dim("batch")},) if dynamic else None
    buffer = io.BytesIO()
    torch.export.save(torch.export.export(model, (example,), dynamic_shapes=shapes), buffer)
    return buffer.getvalue()


def _script(model: nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(model), buffer)
    return buffer.getvalue()


def _torch_save(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _repack(data: bytes, replace: dict[str, bytes | None]) -> bytes:
    """The archive with entries replaced, added or (None) removed.

    Names are relative to the archive's root folder, or to the zip's root with a leading
    ``/``.
    """
    source = zipfile.ZipFile(io.BytesIO(data))
    root = source.namelist()[0].split("/")[0]
    entries = {name: source.read(name) for name in source.namelist()}
    for name, content in replace.items():
        entries[name if name.startswith("/") else f"{root}/{name}"] = content
    entries = {name: content for name, content in entries.items() if content is not None}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for name, content in entries.items():
            target.writestr(name.lstrip("/"), content)
    return buffer.getvalue()


def _edit_json(data: bytes, entry: str, edit) -> bytes:
    root = zipfile.ZipFile(io.BytesIO(data)).namelist()[0].split("/")[0]
    content = json.loads(zipfile.ZipFile(io.BytesIO(data)).read(f"{root}/{entry}"))
    edit(content)
    return _repack(data, {entry: json.dumps(content).encode()})


@pytest.fixture(scope="module")
def exported() -> bytes:
    """A CNN exported with a dynamic batch axis."""
    return _export(_cnn(), torch.randn(2, 1, 8, 8), dynamic=True)


@pytest.fixture(scope="module")
def exported_fixed() -> bytes:
    """The same CNN exported for batches of exactly 2."""
    return _export(_cnn(), torch.randn(2, 1, 8, 8), dynamic=False)


@pytest.fixture(scope="module")
def scripted() -> bytes:
    return _script(_cnn())


# --- the formats ----------------------------------------------------------------------------


def test_registry_lists_the_formats():
    assert {".json", ".pt", ".pt2", ".ts"} <= set(model_suffixes(allow_code=True))
    assert {".json", ".pt2"} <= set(model_suffixes())  # and other libraries'
    assert not {".pt", ".ts"} & set(model_suffixes())  # TorchScript runs code
    assert model_suffixes() == sorted(model_suffixes())
    assert model_format("model.PT2").name == "torch.export program"
    assert model_format(".ts").name == "TorchScript"
    assert model_format("spec.json").conversion_note is None


def test_a_new_format_plugs_in(tmp_path):
    fmt = ModelFormat("plain text", (".txt",), lambda data, name: {"text": data.decode()})
    register_model_format(fmt)
    try:
        assert read_model_file(b"hi", "model.txt") == {"text": "hi"}
    finally:
        from attribution.converter import files

        del files._FORMATS[".txt"]


def test_json_spec_from_bytes_and_path(tmp_path):
    data = json.dumps(DENSE_SPEC).encode()
    assert read_model_file(data, ".json") == DENSE_SPEC
    path = tmp_path / "spec.json"
    path.write_bytes(data)
    assert read_model_file(path) == DENSE_SPEC
    assert Converter(path).output_names == [["low", "high"]]


@pytest.mark.parametrize("fixture", ["exported", "exported_fixed"])
def test_exported_program_runs_on_any_batch(request, fixture):
    module = read_model_file(request.getfixturevalue(fixture), "model.pt2")
    assert isinstance(module, ExportedModule)
    assert module.input_dim == [(1, 8, 8)]
    assert module.batch_size == (None if fixture == "exported" else 2)
    x = torch.randn(5, 1, 8, 8)
    torch.testing.assert_close(module(x), _cnn()(x))
    torch.testing.assert_close(torch_grad(module, x), torch_grad(_cnn(), x))
    assert torch_grad(module, x, dtype="double").dtype == torch.float64


@pytest.mark.parametrize("suffix", [".pt", ".ts"])
def test_torchscript_runs_in_both_precisions(scripted, suffix):
    module = read_model_file(scripted, "model" + suffix, allow_code=True)
    assert isinstance(module, ScriptedModule)
    assert list(module.parameters()) == []  # the scripted weights are not swapped
    x = torch.randn(4, 1, 8, 8)
    torch.testing.assert_close(torch_grad(module, x), torch_grad(_cnn(), x))
    double = torch_grad(module, x, dtype="double")
    assert double.dtype == torch.float64
    torch.testing.assert_close(double.float(), torch_grad(_cnn(), x), rtol=1e-5, atol=1e-6)


def test_converter_refuses_unconvertible_files(tmp_path, exported, scripted):
    path = tmp_path / "model.pt2"
    path.write_bytes(exported)
    with pytest.raises(UnsupportedLayerError, match=r"Cannot convert .*model\.pt2: .*of ATen"):
        Converter(path)
    path = tmp_path / "model.pt"
    path.write_bytes(scripted)
    with pytest.raises(ValueError, match=r"model\.pt is TorchScript, which runs code from the"):
        Converter(path)  # never loaded: TorchScript does not convert anyway


# --- what is refused ------------------------------------------------------------------------


def test_pickled_module_is_refused_without_unpickling():
    data = _torch_save(Tripwire())
    for name in ("model.pt", "model.pt2"):
        with pytest.raises(ValueError, match=r"torch\.save archive of a pickled .*trip "):
            read_model_file(data, name, allow_code=True)
    with pytest.raises(ValueError, match=r"torch\.export\.save\(torch\.export\.export\(model"):
        read_model_file(_torch_save(_cnn()), "model.pt", allow_code=True)
    assert TRIPPED == []


def test_state_dict_is_refused_with_the_way_to_export():
    with pytest.raises(
        ValueError,
        match=r"model\.pt holds weights only \(a state_dict of 4 tensors\), not the model's "
        r"architecture\. Build the model in Python, call model\.load_state_dict",
    ):
        read_model_file(_torch_save(_cnn().state_dict()), "model.pt", allow_code=True)


def test_raw_pickle_is_refused():
    with pytest.raises(ValueError, match=r"model\.pt is a pickle .* it is refused"):
        read_model_file(pickle.dumps(Tripwire()), "model.pt", allow_code=True)
    assert TRIPPED == []


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        pytest.param(b"\x00" * 64, "m.pt2", r"m\.pt2 is not a torch\.export archive", id="random"),
        pytest.param(b"PK\x03\x04junk", "m.pt", r"m\.pt is not a TorchScript archive", id="zipish"),
        pytest.param(b"{", "m.json", r"m\.json is not valid JSON", id="json"),
        pytest.param(b"[1]", "m.json", r"must hold a JSON object", id="json-list"),
        pytest.param(b"\xff\xfe", "m.json", r"m\.json is not valid JSON", id="not-utf8"),
        pytest.param(b"x", "m.xyz", r"Cannot read m\.xyz: supported model files", id="suffix"),
    ],
)
def test_bad_files_are_explained(data, name, message):
    with pytest.raises(ValueError, match=message):
        read_model_file(data, name, allow_code=True)


def test_truncated_archives_are_explained(exported, scripted):
    with pytest.raises(ValueError, match=r"m\.pt2 is not a torch\.export archive .*complete"):
        read_model_file(exported[: len(exported) // 2], "m.pt2")
    with pytest.raises(ValueError, match=r"m\.pt is not a TorchScript archive"):
        read_model_file(scripted[:-200], "m.pt", allow_code=True)


def test_exported_program_needs_one_output():
    class Two(nn.Module):
        def forward(self, x):
            return torch.sin(x), torch.cos(x)

    data = _export(Two(), torch.randn(2, 3), dynamic=False)
    with pytest.raises(ValueError, match=r"two\.pt2 returns 2 outputs; a torch\.export program"):
        read_model_file(data, "two.pt2")


def test_wrong_suffix_names_the_right_one(exported, scripted):
    with pytest.raises(ValueError, match=r"it is a TorchScript archive: name it \.pt"):
        read_model_file(scripted, "model.pt2", allow_code=True)
    with pytest.raises(ValueError, match=r"is a torch\.export archive, not TorchScript: name it"):
        read_model_file(exported, "model.pt", allow_code=True)


def test_bytes_need_a_suffix_and_paths_a_file(tmp_path):
    with pytest.raises(ValueError, match=r"suffix is required when source is bytes"):
        read_model_file(b"{}")
    with pytest.raises(FileNotFoundError, match=r"No model file at .*missing\.pt2\."):
        read_model_file(tmp_path / "missing.pt2")
    with pytest.raises(TypeError, match=r"source must be a path or the file's bytes; got int"):
        read_model_file(3)


def _pickled_weight(config: dict) -> None:
    next(iter(config["config"].values()))["use_pickle"] = True


def _custom_constant(config: dict) -> None:
    config["config"]["obj"] = {"path_name": "custom_obj_0", "use_pickle": False}


def _os_call(program: dict) -> None:
    program["graph_module"]["graph"]["nodes"][0]["target"] = "torch.os.system"


def _file_read(program: dict) -> None:
    program["graph_module"]["graph"]["nodes"][0]["target"] = "torch.ops.aten.from_file.default"


def _dunder_target(program: dict) -> None:
    program["graph_module"]["graph"]["nodes"][0]["target"] = "math.__loader__.load_module"


def _target(target: str):
    def edit(program: dict) -> None:
        program["graph_module"]["graph"]["nodes"][0]["target"] = target

    edit.__name__ = target
    return edit


def _expression(expression: str):
    def edit(program: dict) -> None:
        sizes = program["graph_module"]["graph"]["tensor_values"]["input"]["sizes"]
        sizes[0]["as_expr"]["expr_str"] = expression

    return edit


def _evil_expression(program: dict) -> None:
    sizes = program["graph_module"]["graph"]["tensor_values"]["input"]["sizes"]
    sizes[0]["as_expr"]["expr_str"] = "__import__('os').system('true')"


def _evil_range(program: dict) -> None:
    program["range_constraints"] = {"exec(chr(49))": {"min_val": 0, "max_val": None}}


@pytest.mark.parametrize(
    ("entry", "edit", "message"),
    [
        ("data/weights/model_weights_config.json", _pickled_weight, r"stores the weight .* pickle"),
        ("data/constants/model_constants_config.json", _custom_constant, r"constant 'obj' as a"),
        ("models/model.json", _os_call, r"calls 'torch\.os\.system', which is not an ATen"),
        ("models/model.json", _file_read, r"calls 'torch\.ops\.aten\.from_file\.default', which"),
        ("models/model.json", _dunder_target, r"calls 'math\.__loader__\.load_module'"),
        ("models/model.json", _evil_expression, r"shape expression \"__import__"),
        ("models/model.json", _evil_range, r"shape expression 'exec\(chr\(49\)\)'"),
        # writes a file; a custom operator; a subgraph; hours of integer arithmetic
        ("models/model.json", _target("torch.ops.aten.save.default"), r"reads or writes files"),
        ("models/model.json", _target("torch.ops.mylib.run.default"), r"custom operators run"),
        ("models/model.json", _target("torch.ops.higher_order.cond"), r"'torch\.ops\.higher_or"),
        ("models/model.json", _target("math.factorial"), r"calls 'math\.factorial'"),
        ("models/model.json", _target("_operator.pow"), r"calls '_operator\.pow'"),
        ("models/model.json", _expression("s0 + 9**999999999"), r"expression 's0 \+ 9\*\*9"),
        ("models/model.json", _expression("s0 << 99999999999"), r"expression 's0 << 9"),
    ],
)
def test_export_archives_are_checked_before_loading(exported, entry, edit, message):
    with pytest.raises(ValueError, match=message):
        read_model_file(_edit_json(exported, entry, edit), "model.pt2")


def _forged_weight(config: dict) -> None:
    meta = next(iter(config["config"].values()))["tensor_meta"]
    meta["sizes"] = [{"as_int": 100_000}, {"as_int": 100_000}]


def test_export_weights_may_not_declare_more_than_they_store(exported):
    # torch.export.load makes torch.zeros(sizes) of an empty record: 40 GB from 1 byte
    data = _edit_json(exported, "data/weights/model_weights_config.json", _forged_weight)
    with pytest.raises(ValueError, match=r"declares the weight '0\.weight' of shape \(100000, "):
        read_model_file(data, "model.pt2")


def test_export_inputs_are_bounded_before_loading(exported):
    with pytest.raises(
        ValueError,
        match=r"model\.pt2 takes inputs of shape \(batch, 1, 8, 8\), 64 values per instance; "
        r"this server explains models with at most 10 \(start the dashboard with a higher "
        r"--max-instance-values",
    ):
        read_model_file(exported, "model.pt2", max_instance_values=10)
    assert read_model_file(exported, "model.pt2", max_instance_values=64).input_dim == [(1, 8, 8)]


def test_torchscript_is_refused_by_suffix_and_by_content(scripted):
    for name in ("model.pt", "model.ts", "model.pt2", "model.json", "model.onnx", "model.keras"):
        with pytest.raises(
            ValueError,
            match=rf"^{name.replace('.', '[.]')} is TorchScript, which runs code from the file "
            r"when it is loaded; this server does not accept TorchScript uploads\. Export the "
            r"model with torch\.export .* or start the dashboard with --trust-torchscript",
        ):
            read_model_file(scripted, name)
    assert files.is_torchscript(scripted) and not files.is_torchscript(b"PK\x03\x04junk")
    assert isinstance(read_model_file(scripted, "model.pt", allow_code=True), ScriptedModule)


@pytest.mark.parametrize(
    ("replace", "message"),
    [
        pytest.param(
            {"data/sample_inputs/model.pt": _torch_save(Tripwire())},
            r"sample inputs that are not plain tensors",
            id="sample-inputs",
        ),
        pytest.param(
            {"data/sample_inputs/model.pt": None},
            r"model\.pt2 lacks data/sample_inputs/model\.pt; save it again",
            id="no-sample-inputs",
        ),
        pytest.param(
            {"data/weights/model_weights_config.json": b"{"},
            r"has a damaged data/weights/model_weights_config\.json: Expecting",
            id="damaged-config",
        ),
        pytest.param(
            {"/version": b"1", "/serialized_exported_program.json": b"{}"},
            r"torch writes all entries below one folder",
            id="legacy-fallback",
        ),
        pytest.param(
            {"data/weights/model.pt": _torch_save(Tripwire())},
            r"stores its weights in an older, pickled layout",
            id="legacy-weights",
        ),
        pytest.param(
            {"data/aotinductor/model/model.so": b"\x7fELF"},
            r"holds compiled code \(data/aotinductor/model/model\.so\)",
            id="compiled",
        ),
        pytest.param(
            {"padding": b"\x00" * 30_000_000},
            r"would expand from \d+ to \d+ bytes",
            id="zip-bomb",
        ),
    ],
)
def test_export_archive_payloads_are_refused(exported, replace, message):
    data = _repack(exported, replace)
    if "padding" in replace:  # compressed: a small file that expands 1,000-fold
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
            target.writestr("archive/padding", replace["padding"])
        data = buffer.getvalue()
    with pytest.raises(ValueError, match=message):
        read_model_file(data, "model.pt2")
    assert TRIPPED == []


# --- load_model -----------------------------------------------------------------------------


def test_load_model_of_a_spec_converts_it():
    loaded = load_model(json.dumps(DENSE_SPEC).encode(), "spec.json")
    assert (loaded.name, loaded.format) == ("spec.json", "innsight's JSON spec")
    assert loaded.module is None
    assert loaded.converter is not None and loaded.conversion_error is None
    assert loaded.methods == applicable(converted=True, differentiable=True)
    assert loaded.input_names == [[["age", "bmi", "bp"]]]
    assert (loaded.input_dim, loaded.output_dim) == ([(3,)], [(2,)])


def test_load_model_of_an_exported_program_reads_its_shapes(exported):
    loaded = load_model(exported, "cnn.pt2", output_names=["a", "b", "c"])
    assert loaded.converter is None
    assert "graph of ATen operators" in loaded.conversion_error
    assert loaded.methods == UNCONVERTED_METHODS
    assert (loaded.input_dim, loaded.output_dim) == ([(1, 8, 8)], [(3,)])
    assert loaded.input_names[0][0] == ["C1"]
    assert loaded.output_names == [["a", "b", "c"]]
    with pytest.raises(ValueError, match=r"input_dim \[\(1, 9, 9\)\] does not match cnn\.pt2"):
        load_model(exported, "cnn.pt2", input_dim=(1, 9, 9))


def test_load_model_of_torchscript_needs_input_dim(scripted):
    with pytest.raises(ValueError, match=r"input_dim is required for cnn\.pt: TorchScript keeps"):
        load_model(scripted, "cnn.pt", allow_code=True)
    loaded = load_model(scripted, "cnn.pt", input_dim=(1, 8, 8), allow_code=True)
    assert loaded.output_dim == [(3,)] and loaded.methods == applicable(
        converted=False, differentiable=True
    )
    assert "torch.fx cannot trace TorchScript" in loaded.conversion_error
    with pytest.raises(ValueError, match=r"Running cnn\.pt on inputs of shape \(batch, 1, 5, 5\)"):
        load_model(scripted, "cnn.pt", input_dim=(1, 5, 5), allow_code=True)


def test_load_model_infers_a_scripted_mlps_input(tmp_path):
    path = tmp_path / "mlp.ts"
    path.write_bytes(_script(nn.Sequential(nn.Sequential(nn.Linear(4, 3)), nn.Tanh())))
    assert load_model(path, allow_code=True).input_dim == [(4,)]


def test_load_model_of_a_module_converts_or_says_why():
    loaded = load_model(nn.Sequential(nn.Linear(4, 2)))
    assert loaded.converter is not None and loaded.format == "torch module"

    class Sine(nn.Module):
        def forward(self, x):
            return torch.sin(x)

    loaded = load_model(nn.Sequential(nn.Linear(4, 2), Sine()), input_dim=(4,))
    assert loaded.converter is None and loaded.methods == applicable(
        converted=False, differentiable=True
    )
    assert "Cannot convert" in loaded.conversion_error and "sin" in loaded.conversion_error


def test_load_model_needs_one_output_tensor():
    class Two(nn.Module):
        def forward(self, x):
            return torch.sin(x), torch.cos(x)

    with pytest.raises(ValueError, match=r"Two returns tuple; without conversion, models are"):
        load_model(Two(), input_dim=(3,))


def test_registered_model_objects_are_adapted(monkeypatch):
    class Foreign:
        """A model of another library, as plain weights."""

    kind = ModelObjectKind(
        "foreign model", lambda obj: isinstance(obj, Foreign), lambda _: DENSE_SPEC
    )
    monkeypatch.setattr(files, "_OBJECT_KINDS", [])
    register_model_object(kind)
    assert model_object_kind(Foreign()) is kind and model_object_kind(object()) is None
    converter = Converter(Foreign())
    assert converter.input_names == [[DENSE_SPEC["input_names"]]]
    loaded = load_model(Foreign())
    assert (loaded.name, loaded.format) == ("Foreign", "foreign model")
    assert loaded.methods == applicable(converted=True, differentiable=True)
