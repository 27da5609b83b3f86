"""convcalc/schemas: every command's --json document validates against its JSON Schema (docs/architecture.md keys)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convcalc.cli import app

jsonschema = pytest.importorskip("jsonschema")
EXAMPLE = str(Path(__file__).parent.parent / "examples" / "shapes.convcalc.toml")


def schema(name: str) -> dict:
    """The schema as installed with the package (package data, not the source tree)."""
    return json.loads((resources.files("convcalc") / "schemas" / f"{name}.schema.json").read_text())


def document(*args: str) -> dict:
    result = CliRunner().invoke(app, [*args, "--json"])
    return json.loads(result.stdout)


@pytest.mark.parametrize("name", ["out", "rf", "solve", "sizes", "gridding", "aspp", "design", "check", "error",
                                  "inspect", "erf", "memory"])
def test_schemas_are_valid_json_schema(name):
    jsonschema.Draft202012Validator.check_schema(schema(name))


CASES = [
    ("out", ["out", "--in", "256", "-k", "3", "-d", "2", "-p", "2"]),
    ("out", ["out", "--in", "5", "-k", "2", "-s", "2", "-p", "1", "--op", "max", "--ceil", "--dims", "1"]),
    ("out", ["out", "--in", "8x8x8", "-k", "4", "-s", "2", "-p", "1", "--op", "tconv", "--output-padding", "1"]),
    ("out", ["out", "--in", "3", "-k", "5"]),
    ("out", ["out", "--in", "8", "-k", "3", "--expect", "7"]),
    ("out", ["out", "--shape", "torch.Size([2, 8, 16, 16])", "-k", "3", "--groups", "2", "--out-channels", "4"]),
    ("out", ["out", "--shape", "1x10x8x8", "-k", "3", "--groups", "3"]),
    ("rf", ["rf", "--layers", "3x3d2*3"]),
    ("rf", ["rf", "--layers", "3x3p1*2,max2", "--shape", "1x3x32x32", "--channels", "8,16"]),
    ("rf", ["rf", "--layers", "3x3d2p2*3", "--in", "32", "--unit", "0,5", "--expect-rf", "13"]),
    ("rf", ["rf", "--layers", "3x3d2,3x3d2", "--in", "8"]),
    ("rf", ["rf", "--layers", "tconv4s2p1,tconv4s2p1", "--dims", "1"]),
    ("rf", ["rf", "--layers", "tconv1s2", "--in", "4", "--unit", "1", "--dims", "1"]),
    ("gridding", ["gridding", "2,2,2"]),
    ("gridding", ["gridding", ",".join(["2"] * 50)]),
    ("gridding", ["gridding", "1,2,5", "-k", "5"]),
    ("aspp", ["aspp", "--in", "65", "--rates", "6,12,18,65"]),
    ("solve", ["solve", "--in", "224", "--out", "112"]),
    ("solve", ["solve", "--in", "224x320", "--out", "112x160", "--op", "conv", "-k", "3"]),
    ("solve", ["solve", "--in", "224", "--out", "112", "--convention", "tf", "--dims", "1"]),
    ("solve", ["solve", "--in", "7", "--out", "14", "--op", "max"]),
    ("design", ["design", "--rf", "1000"]),
    ("design", ["design", "--depth", "8", "--map", "65", "--hdc"]),
    ("design", ["design", "--rf", "100", "--depth", "2"]),
    ("design", ["design", "--rf", "10000", "-k", "2", "--max-rate", "3"]),
    ("check", ["check", EXAMPLE]),
    ("erf", ["erf", "--layers", "3x3*4"]),
    ("erf", ["erf", "--layers", "tconv4s2p1,3s2d2,max3", "--dims", "3"]),
    ("sizes", ["sizes", "--layers", "3x3p1,max2,3x3p1,max2", "--range", "1..64"]),
    ("sizes", ["sizes", "--layers", "3p1,max2,tconv2s2", "--range", "1..32", "--same-size", "--dims", "1"]),
    ("sizes", ["sizes", "--layers", "7x7s2psame,max3s2psame", "--range", "1..40", "--convention", "tf"]),
    ("sizes", ["sizes", "--layers", "5x5,5x5", "--range", "1..8"]),
    ("error", ["out", "--in", "8", "-k", "3x"]),
    ("error", ["rf", "--layers", "3x3q"]),
    ("error", ["gridding", "0"]),
    ("error", ["aspp", "--in", "65"]),
    ("error", ["check", "missing.toml"]),
    ("error", ["design", "--depth", "0"]),
    ("error", ["erf", "--layers", "3x3", "--node", "x"]),
]
MODELS = str(Path(__file__).parent / "models.py")
INSPECT_CASES = [
    ["inspect", f"{MODELS}:TinyResNet", "--input", "1x3x64x64"],
    ["inspect", f"{MODELS}:TinyUNet", "--input", "1x1x32x32", "--all", "--verify"],
    ["inspect", f"{MODELS}:SEBlock", "--input", "1x3x16x16", "--node", "after", "--verify"],
    ["inspect", f"{MODELS}:DataDependent", "--input", "1x3x16x16"],
    ["inspect", f"{MODELS}:CostZoo", "--input", "2x3x8x8", "--dtype", "bfloat16"],
]
SIZES_CASES = [
    ["inspect", f"{MODELS}:TinyUNet", "--input", "1x1x32x32", "--sizes", "1..64"],
    ["inspect", f"{MODELS}:LeNet", "--input", "1x1x32x32", "--sizes", "1..64", "--vary-dim", "3"],
    ["inspect", f"{MODELS}:SEBlock", "--input", "1x3x16x16", "--sizes", "1..8"],
]
VERIFY_CASES = [
    ("out", ["out", "--in", "64", "-k", "4", "-s", "2", "-p", "1", "--op", "tconv", "--verify"]),
    ("out", ["out", "--in", "100000", "-k", "3", "--verify"]),
    ("out", ["out", "--shape", "2x8x16x16", "-k", "4", "-s", "2", "-p", "1", "--op", "tconv", "--verify"]),
    ("rf", ["rf", "--layers", "3x3d2*3", "--in", "20", "--verify"]),
    ("gridding", ["gridding", "1,2,9", "--verify"]),
    ("aspp", ["aspp", "--in", "33", "--rates", "6,40", "--verify"]),
    ("check", ["check", EXAMPLE, "--verify"]),
]


@pytest.mark.parametrize("name, args", CASES)
def test_documents_validate(name, args):
    jsonschema.validate(document(*args), schema(name))


@pytest.mark.parametrize("name, args", VERIFY_CASES)
def test_verified_documents_validate(name, args):
    pytest.importorskip("torch")
    jsonschema.validate(document(*args), schema(name))


def test_schemas_reject_a_wrong_document():
    bad = document("out", "--in", "8", "-k", "3")
    bad["surprise"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema("out"))
    del bad["surprise"], bad["effective_kernel_size"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema("out"))


@pytest.mark.parametrize("args", INSPECT_CASES)
def test_inspect_documents_validate(args):
    pytest.importorskip("torch")
    jsonschema.validate(document(*args), schema("inspect"))


@pytest.mark.parametrize("args", SIZES_CASES)
def test_inspect_sizes_documents_validate(args):
    pytest.importorskip("torch")
    jsonschema.validate(document(*args), schema("sizes"))


@pytest.mark.parametrize("args", [
    ["erf", f"{MODELS}:TinyResNet", "--input", "1x3x32x32", "--samples", "2"],
    ["erf", f"{MODELS}:TinyAttention", "--input", "1x3x32x32", "--samples", "2", "--abs"],
])
def test_erf_model_documents_validate(args):
    pytest.importorskip("torch")
    jsonschema.validate(document(*args), schema("erf"))


@pytest.mark.parametrize("args", [
    ["memory", f"{MODELS}:TinyResNet", "--input", "4x3x32x32"],
    ["memory", f"{MODELS}:TinyUNet", "--input", "2x1x32x32", "--infer"],
    ["memory", f"{MODELS}:DictHeads", "--input", "2x3x32x32", "--budget", "8MiB", "--optimizer", "momentum"],
    ["memory", f"{MODELS}:FrozenBackbone", "--input", "2x3x16x16", "--verify", "--amp", "bf16"],
    ["memory", f"{MODELS}:TinyResNet", "--input", "4x3x32x32", "--budget", "1kB"],
])
def test_memory_documents_validate(args):
    pytest.importorskip("torch")
    jsonschema.validate(document(*args), schema("memory"))
