"""Check files: the shapes a project's code assumes, written in TOML and asserted in CI.

```toml
[[check]]
name = "dilated 3x3 keeps size"
in = "256x256"            # optional for rf-only checks
layers = "3x3d2p2"        # one layer or a stack
out = "256x256"           # expected final output size
rf = 5                    # expected receptive field (scalar or per-dim)
jump = 1                  # expected cumulative stride
no_gridding = true        # the stack must cover its receptive field without holes
```

A file that cannot be read, is not TOML, has unknown keys or values of the wrong type, or a layer spec
that does not parse raises ConvcalcError naming the check and the key; a stack PyTorch rejects on the
given input is a failed check, not a bad file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import replace
from fractions import Fraction
from typing import Any

from .errors import ConvcalcError, ShapeError, SpecError
from .layer import Layer, resolve_dims
from .padding import CONVENTION_NAMES
from .receptive import receptive_field
from .spec import parse_layers, parse_shape, parse_size
from .checkresult import Check, CheckResult, ModelSpec, difference, format_value

__all__ = ["Check", "CheckResult", "ModelSpec", "difference", "format_value", "load_checks", "parse_checks",
           "run_check", "run_checks"]

KEYS = ("name", "in", "layers", "convention", "out", "rf", "jump", "no_gridding")
FILE_KEYS = ("check", "convention")  # a file-level convention is every check's default
EXPECTATIONS = ("out", "rf", "jump", "no_gridding")


def find_pyproject(start: str = ".") -> str | None:
    """The nearest ``pyproject.toml`` at or above ``start`` (as pip and pytest look for a project's
    root), or None."""
    import os

    here = os.path.abspath(start)
    while True:
        candidate = os.path.join(here, "pyproject.toml")
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def configured_check_files(pyproject: str) -> list[str]:
    """The files ``[tool.convcalc] check-files`` lists in ``pyproject`` (paths or glob patterns from its
    folder), in order, each once; ConvcalcError where it lists none, or a pattern matches no file."""
    import glob
    import os
    import tomllib

    try:
        with open(pyproject, "rb") as handle:
            settings = tomllib.load(handle).get("tool", {}).get("convcalc", {})
    except tomllib.TOMLDecodeError as exc:
        raise ConvcalcError(f"{pyproject} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConvcalcError(f"cannot read {pyproject}: {exc.strerror or exc}") from None
    patterns = settings.get("check-files") if isinstance(settings, dict) else None
    if not patterns:
        raise ConvcalcError(f"no check file given, and {pyproject} lists none: give FILE..., or add "
                            f"check-files = [\"shapes.convcalc.toml\"] under [tool.convcalc]")
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise ConvcalcError(f"{pyproject}: [tool.convcalc] check-files must be a list of paths or glob patterns, "
                            f"got {patterns!r}")
    root = os.path.dirname(os.path.abspath(pyproject))
    files: list[str] = []
    for pattern in patterns:
        matched = sorted(glob.glob(os.path.join(root, pattern), recursive=True))
        if not matched:
            raise ConvcalcError(f"{pyproject}: check-files pattern {pattern!r} matches no file")
        files += [os.path.relpath(path) for path in matched if os.path.relpath(path) not in files]
    return files


MAX_FILE_BYTES = 32 * 2**20
MAX_CHECKS = 100_000


def load_checks(path: str) -> list[Check]:
    """Read and validate a check file (tomllib, stdlib): a regular file of at most 32 MiB, UTF-8 with or
    without a byte-order mark."""
    import os
    import stat
    import tomllib

    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode) or not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise ConvcalcError(f"cannot read the check file {path!r}: it is {kind}")
        if info.st_size > MAX_FILE_BYTES:
            raise ConvcalcError(f"the check file {path!r} has {info.st_size:,} bytes; at most "
                                f"{MAX_FILE_BYTES:,} are read")
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
        text = raw.decode("utf-8-sig")
        document = tomllib.loads(text)
    except ConvcalcError:
        raise
    except tomllib.TOMLDecodeError as exc:
        raise ConvcalcError(f"{path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConvcalcError(f"{path} is not UTF-8 text: byte {exc.start} cannot be decoded") from None
    except RecursionError:
        raise ConvcalcError(f"{path} nests tables or arrays too deeply to read") from None
    except (OSError, ValueError) as exc:  # ValueError: a path with a NUL byte
        message = getattr(exc, "strerror", None) or exc
        raise ConvcalcError(f"cannot read the check file {path!r}: {message}") from None
    return parse_checks(document, path, check_positions(text))


_TABLE_HEADER = re.compile(r"\s*\[\[\s*check\s*\]\]\s*(#.*)?$")
_KEY_LINE = re.compile(r"""\s*(["']?)([A-Za-z0-9_-]+)\1\s*=""")


def check_positions(text: str) -> list[tuple[int, dict[str, int]]]:
    """Per ``[[check]]`` table, in order: the line of its header and of each of its keys (1-based).

    A line scan, not a parse (tomllib keeps no positions): multi-line strings are skipped; a file whose
    headers it cannot match one to one with the parsed tables gets no positions at all.
    """
    found: list[tuple[int, dict[str, int]]] = []
    current: dict[str, int] | None = None
    quote = None
    for number, line in enumerate(text.splitlines(), 1):
        if quote is not None:
            if line.count(quote) % 2:
                quote = None
            continue
        start = line.lstrip()[:1]
        if start == "[":
            current = {} if _TABLE_HEADER.match(line) else None
            if current is not None:
                found.append((number, current))
        elif current is not None and start and start != "#" and (match := _KEY_LINE.match(line)):
            current.setdefault(match.group(2), number)
        if "'''" in line or '"""' in line:
            for mark in ('"""', "'''"):
                if line.count(mark) % 2:
                    quote = mark
    return found


def parse_checks(document: dict[str, Any], source: str = "the check file",
                 positions: list[tuple[int, dict[str, int]]] | None = None) -> list[Check]:
    """Validate a parsed TOML document: a list of ``[[check]]`` tables and nothing else."""
    unknown = sorted(set(document) - set(FILE_KEYS))
    if unknown:
        raise ConvcalcError(f"{source}: unknown top-level key {unknown[0]!r}: expected [[check]] tables and "
                            f"an optional convention")
    default = _convention(document.get("convention", "torch"), source)
    entries = document.get("check")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise ConvcalcError(f"{source}: expected one or more [[check]] tables")
    if len(entries) > MAX_CHECKS:
        raise ConvcalcError(f"{source}: {len(entries):,} checks; at most {MAX_CHECKS:,} per file")
    if positions is not None and len(positions) != len(entries):
        positions = None
    file = source if source != "the check file" else None
    checks = [_check(i, entry, default, file, positions[i - 1] if positions else None)
              for i, entry in enumerate(entries, 1)]
    seen: dict[str, int] = {}
    for check in checks:
        if check.name in seen:
            raise ConvcalcError(f"check {check.name!r} (#{check.index}): the name is also used by check "
                                f"#{seen[check.name]}; names must be unique")
        seen[check.name] = check.index
    return checks


def _convention(value: Any, where: str) -> str:
    if not isinstance(value, str) or value.strip().lower() not in CONVENTION_NAMES:
        raise ConvcalcError(f"{where}: key 'convention' must be \"torch\" or \"tf\" (also \"tensorflow\", "
                            f"\"keras\" or \"jax\"), got {value!r}")
    return CONVENTION_NAMES[value.strip().lower()]


def _check(index: int, entry: dict[str, Any], default_convention: str = "torch", file: str | None = None,
           position: tuple[int, dict[str, int]] | None = None) -> Check:
    where_in_file = {"file": file, "line": position[0] if position else None,
                     "key_lines": position[1] if position else {}}
    return _parsed_check(index, entry, default_convention, where_in_file)


def _parsed_check(index: int, entry: dict[str, Any], default_convention: str,
                  where_in_file: dict[str, Any]) -> Check:
    name = entry.get("name", f"#{index}")
    where = f"check #{index}"
    if not isinstance(name, str) or not name.strip():
        raise ConvcalcError(f"{where}: key 'name' must be a non-empty string, got {_kind(name)}")
    if not name.isprintable() and any(ord(ch) < 32 or ord(ch) == 127 for ch in name):  # terminals, JUnit XML
        raise ConvcalcError(f"{where}: key 'name' must not contain control characters, got {name!r}")
    where = f"check {name!r} (#{index})"
    for key in entry:
        if key not in (MODEL_KEYS if "model" in entry else KEYS):
            raise ConvcalcError(_unknown_key(key, where, "model" in entry, where_in_file))
    if "model" in entry:
        return replace(_model_check(index, name, entry, where), **where_in_file)
    if "layers" not in entry:
        raise ConvcalcError(f"{where}: key 'layers' is missing (the stack to check, e.g. \"3x3d2p2\")")
    if not isinstance(entry["layers"], str):
        raise ConvcalcError(f"{where}: key 'layers' must be a string such as \"3x3d2p2\", got {_kind(entry['layers'])}")
    expected = {key: entry[key] for key in EXPECTATIONS if key in entry}
    if not expected:
        raise ConvcalcError(f"{where}: expects nothing: give at least one of out, rf, jump, no_gridding")
    in_size = _size(entry["in"], where, "in", 1) if "in" in entry else None
    if "out" in expected:
        if in_size is None:
            raise ConvcalcError(f"{where}: key 'out' needs key 'in' (the input size)")
        expected["out"] = _size(expected["out"], where, "out", 1)
    if "rf" in expected:
        expected["rf"] = _size(expected["rf"], where, "rf", 1)
    if "jump" in expected:
        expected["jump"] = _jump(expected["jump"], where)
    if "no_gridding" in expected and not isinstance(expected["no_gridding"], bool):
        raise ConvcalcError(f"{where}: key 'no_gridding' must be true or false, got {_kind(expected['no_gridding'])}")
    # A spec that does not parse makes the file wrong, not the check failed: parse it now.
    convention = _convention(entry.get("convention", default_convention), where)
    stack = _parse(name, index, entry["layers"], in_size, expected, convention)
    return Check(index, name, entry["layers"], in_size, expected, tuple(stack), **where_in_file)


MODEL_KEYS = ("name", "model", "input", "kwargs", "node", "shape", "rf", "jump", "params", "macs", "sizes",
              "sizes_range")


def _unknown_key(key: str, where: str, model: bool, where_in_file: dict[str, Any]) -> str:
    """``FILE:LINE: check 'x' (#1): unknown key 'rff'; did you mean 'rf'? ...``, with every key either
    kind of check takes."""
    import difflib

    line = where_in_file["key_lines"].get(key)
    place = f"{where_in_file['file']}:{line}: " if where_in_file["file"] and line else ""
    close = difflib.get_close_matches(key, MODEL_KEYS if model else KEYS, n=1) or \
        difflib.get_close_matches(key, KEYS + MODEL_KEYS, n=1)
    guess = f"; did you mean {close[0]!r}?" if close else ""
    kind = "a check of a model" if model else "a check of layers"
    return (f"{place}{where}: unknown key {key!r} for {kind}{guess} (a check of layers takes "
            f"{', '.join(KEYS)}; a check of a model takes {', '.join(MODEL_KEYS)})")


def _model_check(index: int, name: str, entry: dict[str, Any], where: str) -> Check:
    """A check of a real model: ``model`` (as ``convcalc inspect`` takes it), ``input`` (N x C x spatial),
    optional ``kwargs`` and ``node`` (default: the output); expects ``shape``, ``rf``, ``jump``,
    ``params`` (the whole model's), ``macs`` (one forward pass, the aten convention: torch.utils.flop_counter's
    FLOPs halved) and ``sizes`` (the rule the accepted square sizes of ``sizes_range``, default 1..512, follow:
    "multiples of 16 from 16"; see ``inspect --sizes``)."""
    import json

    for key in ("model", "input"):
        if not isinstance(entry.get(key), str):
            example = '"pkg.models:Net"' if key == "model" else '"1x3x224x224"'
            raise ConvcalcError(f"{where}: key {key!r} must be a string such as {example}")
    try:
        shape = parse_shape(entry["input"], "input")
    except SpecError as exc:
        raise SpecError(f"{where}, key 'input': {exc.reason}", exc.text, exc.position) from None
    kwargs = entry.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise ConvcalcError(f"{where}: key 'kwargs' must be a table, got {_kind(kwargs)}")
    node = entry.get("node")
    if node is not None and not isinstance(node, str):
        raise ConvcalcError(f"{where}: key 'node' must be a string, got {_kind(node)}")
    expected: dict[str, Any] = {}
    dims = len(shape) - 2
    if "shape" in entry:
        expected["shape"] = tuple(entry["shape"]) if isinstance(entry["shape"], list) and all(
            _is_int(v) for v in entry["shape"]) else parse_shape(str(entry["shape"]), "shape")
    if "rf" in entry:
        expected["rf"] = "global" if entry["rf"] == "global" else _per_dim(_size(entry["rf"], where, "rf", 1), dims)
    if "jump" in entry:
        expected["jump"] = _per_dim(_jump(entry["jump"], where), dims)
    for key in ("params", "macs"):
        if key in entry:
            if not _is_int(entry[key]) or entry[key] < 0:
                raise ConvcalcError(f"{where}: key {key!r} must be a count (an integer >= 0), got {_kind(entry[key])}")
            expected[key] = entry[key]
    if "sizes" in entry:
        if not isinstance(entry["sizes"], str):
            raise ConvcalcError(f"{where}: key 'sizes' must be a rule such as \"multiples of 16 from 16\", got "
                                f"{_kind(entry['sizes'])}")
        expected["sizes"] = entry["sizes"]
    sizes_range = (1, 512)
    if "sizes_range" in entry:
        from .sizes import MAX_MODEL_SIZES, parse_range

        if "sizes" not in entry or not isinstance(entry["sizes_range"], str):
            raise ConvcalcError(f"{where}: key 'sizes_range' is a range such as \"1..512\" for a 'sizes' "
                                f"expectation")
        sizes_range = parse_range(entry["sizes_range"], limit=MAX_MODEL_SIZES, label=f"{where}: key 'sizes_range'")
    if not expected:
        raise ConvcalcError(f"{where}: expects nothing: give at least one of shape, rf, jump, params, macs, sizes")
    spec = ModelSpec(entry["model"], shape, json.dumps(kwargs, sort_keys=True), node, sizes_range)
    return Check(index, name, "", None, expected, model=spec)


def _size(value: Any, where: str, key: str, minimum: int) -> int | tuple[int, ...]:
    if isinstance(value, str):
        try:
            parsed = parse_size(value, key)
        except SpecError as exc:
            raise SpecError(f"{where}, key {key!r}: {exc.reason}", exc.text, exc.position) from None
    elif isinstance(value, list) and value and all(_is_int(v) for v in value):
        parsed = tuple(value)
    elif _is_int(value):
        parsed = value
    else:
        raise ConvcalcError(f"{where}: key {key!r} must be a size (256, \"256x256\" or [256, 256]), "
                            f"got {_kind(value)}")
    if any(v < minimum for v in (parsed if isinstance(parsed, tuple) else (parsed,))):
        raise ConvcalcError(f"{where}: key {key!r} must be positive, got {value!r}")
    if isinstance(parsed, tuple) and not 1 <= len(parsed) <= 3:
        raise ConvcalcError(f"{where}: key {key!r} has {len(parsed)} dimensions; PyTorch layers have 1, 2 or 3")
    return parsed


def _jump(value: Any, where: str) -> Fraction | tuple[Fraction, ...]:
    """A jump: an integer, a float such as 0.5, a fraction string such as \"1/3\", or a list of them."""
    def one(v: Any) -> Fraction:
        value = None
        if _is_int(v) or (isinstance(v, float) and math.isfinite(v)):
            value = Fraction(v)
        elif isinstance(v, str):
            try:
                value = Fraction(v)
            except (ValueError, ZeroDivisionError):
                pass
        if value is None or value <= 0:
            raise ConvcalcError(f"{where}: key 'jump' must be a positive number (1, 0.5 or \"1/3\") or a list "
                                f"of them, got {_kind(v)}")
        return value

    return tuple(one(v) for v in value) if isinstance(value, list) and value else one(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    names = {str: "a string", bool: "a boolean", int: "an integer", float: "a float", list: "an array",
             dict: "a table"}
    return f"{names.get(type(value), type(value).__name__)} ({value!r})"


def _dims(in_size: Any, expected: dict[str, Any]) -> int | None:
    """The number of dimensions the sizes fix (they must agree), or None: the layer spec decides."""
    values = {"in": in_size, **{k: v for k, v in expected.items() if isinstance(v, tuple)}}
    return resolve_dims(values) if any(isinstance(v, tuple) for v in values.values()) else None


def _parse(name: str, index: int, text: str, in_size: Any, expected: dict[str, Any],
           convention: str = "torch") -> list[Layer]:
    where = f"check {name!r} (#{index}), key 'layers'"
    try:
        return parse_layers(text, _dims(in_size, expected), convention=convention)
    except SpecError as exc:
        raise SpecError(f"{where}: {exc.reason}", exc.text, exc.position) from None
    except ConvcalcError as exc:
        raise ConvcalcError(f"{where}: {exc}") from None


def run_check(check: Check) -> CheckResult:
    """Compute what the check expects; a stack PyTorch rejects on its input fails the check."""
    if check.model is not None:
        from .modelchecks import run_model_check

        return run_model_check(check)
    layers = check.stack or tuple(_parse(check.name, check.index, check.layers, check.in_size, check.expected))
    n = layers[0].dims
    expected = {key: _per_dim(value, n) for key, value in check.expected.items()}
    try:
        stack = receptive_field(layers, check.in_size)
    except ShapeError as exc:  # PyTorch rejects a layer on any input
        return CheckResult(check, False, expected, {}, str(exc))
    except ConvcalcError as exc:  # the stack needs key 'in', or is too large to analyse: this check's error
        return CheckResult(check, False, expected, {}, exc.worded({"in_size": "key 'in'"}), error=True)
    if stack.rejected is not None:
        return CheckResult(check, False, expected, {}, stack.rejected[1], stack)
    found = {"out": lambda: stack.out, "rf": lambda: stack.receptive_field, "jump": lambda: stack.jump,
             "no_gridding": lambda: all(c.holes == 0 for c in stack.coverage)}
    try:
        actual = {key: found[key]() for key in expected}  # holes are worked out only when asked for
    except ConvcalcError as exc:  # e.g. a field too wide to count its holes
        return CheckResult(check, False, expected, {}, str(exc), stack, error=True)
    failed = tuple(key for key in expected if expected[key] != actual[key])
    problems = [difference(key, expected[key], actual[key], stack) for key in failed]
    return CheckResult(check, not problems, expected, actual, "; ".join(problems), stack, failed_keys=failed)


def run_checks(checks: Sequence[Check]) -> list[CheckResult]:
    return [run_check(check) for check in checks]


def _per_dim(value: Any, dims: int) -> Any:
    if isinstance(value, bool):
        return value
    return tuple(value) if isinstance(value, tuple) else (value,) * dims
