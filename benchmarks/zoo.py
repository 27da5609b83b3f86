"""``convcalc inspect`` over the model zoos, held to eager torch and to the tools each MAC convention is named
after: every torchvision classification and segmentation model, and the smallest timm model of every
family (the letters its name starts with), untrained, on the CPU, at the model's default input size;
models over 100 M parameters skipped. One process per model, with a timeout and a memory limit.

For each model: whether inspect exits 0, how it traced (``fx``, ``fx, N opaque modules`` or ``forward
hooks``), its time and peak memory over one eager forward's, and against the references:

- the output shape, against an eager forward;
- ``params``, against ``sum(p.numel())``;
- ``aten`` MACs, against ``torch.utils.flop_counter`` FLOPs / 2, attention in its math form (under
  ``sdpa_kernel(SDPBackend.MATH)``, and grad enabled so that ``nn.MultiheadAttention`` takes its slow
  path: on CPU flop_counter counts the fused ``scaled_dot_product_attention`` and the fast path as 0);
- ``fvcore`` MACs, against ``FlopCountAnalysis(model, x).total()`` on the model as the user runs it;
- ``torchinfo`` MACs, against ``summary(...).total_mult_adds``.

Then the table of matches per source and every mismatch with its cause. timm needs torchvision, which CI's
CPU torch cannot import, so this runs in a venv of its own:

    python -m venv /work/zoo && . /work/zoo/bin/activate
    echo "torch==2.14.1" > constraints.txt
    pip install -c constraints.txt torch==2.14.1 torchvision==0.29.1 timm fvcore torchinfo
    pip install -c constraints.txt -e ".[torch,test]"
    python benchmarks/zoo.py [--jobs 2] [--only NAME ...] [--out zoo.jsonl]

The same venv runs the tests CI skips for want of torchvision: ``python benchmarks/zoo.py --tests``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MAX_PARAMS = 100_000_000
TIMEOUT = 900
MEMORY_LIMIT = 12 * 2**30


def torchvision_models() -> list[tuple[str, str, tuple[int, ...]]]:
    """(name, factory, input shape) of every torchvision classification and segmentation model."""
    import torchvision.models as tvm

    found = []
    for module, kind in ((tvm, "classification"), (tvm.segmentation, "segmentation")):
        for name in tvm.list_models(module=module):
            weights = tvm.get_model_weights(name).DEFAULT
            transforms = weights.transforms()
            size = getattr(transforms, "crop_size", None) or getattr(transforms, "resize_size", None) or [224]
            size = size[0] if isinstance(size, (list, tuple)) else size
            if weights.meta.get("num_params", 0) > MAX_PARAMS:
                continue
            target = f"torchvision.models{'.segmentation' if kind == 'segmentation' else ''}:{name}"
            found.append((f"tv/{name}", target, (1, 3, size, size)))
    return found


def timm_models() -> list[tuple[str, str, tuple[int, ...]]]:
    """The smallest model (by parameters, built on the meta device) of each timm family."""
    import timm
    import torch

    families: dict[str, tuple[int, str]] = {}
    for name in timm.list_models():
        family = re.match(r"[a-z]+", name).group(0)
        try:
            with torch.device("meta"):
                model = timm.create_model(name, pretrained=False)
        except Exception:
            continue
        params = sum(p.numel() for p in model.parameters())
        if params <= MAX_PARAMS and (family not in families or params < families[family][0]):
            families[family] = (params, name)
    found = []
    for family, (params, name) in sorted(families.items()):
        cfg = timm.get_pretrained_cfg(name)
        size = tuple(getattr(cfg, "input_size", None) or (3, 224, 224)) if cfg is not None else (3, 224, 224)
        found.append((f"timm/{name}", "timm:create_model", (1, *size)))
    return found


CHILD = r'''
import json, os, sys, time, warnings, io, contextlib, resource
began = time.perf_counter()
warnings.filterwarnings("ignore")
name, target, shape = sys.argv[1], sys.argv[2], tuple(json.loads(sys.argv[3]))
kwargs = json.loads(sys.argv[4])
import torch
result = {"name": name, "input": list(shape)}
def build():
    torch.manual_seed(0)
    if target == "timm:create_model":
        import timm
        return timm.create_model(kwargs["model_name"], pretrained=False).eval()
    import importlib
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)(**kwargs).eval()
model = build()
x = torch.randn(*shape)
start = time.perf_counter()
with torch.no_grad():
    out = model(x)
result["eager_seconds"] = time.perf_counter() - start
result["baseline_seconds"] = time.perf_counter() - began  # imports, building the model, one forward
result["eager_peak_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
def shapes(v):
    if isinstance(v, torch.Tensor): return [list(v.shape)]
    if isinstance(v, dict): return [s for k in v for s in shapes(v[k])]
    if isinstance(v, (tuple, list)): return [s for i in v for s in shapes(i)]
    return []
result["out_shapes"] = shapes(out)
result["params"] = sum(p.numel() for p in model.parameters())
try:
    from fvcore.nn import FlopCountAnalysis
    import logging; logging.disable(logging.CRITICAL)
    analysis = FlopCountAnalysis(model, x)
    analysis.unsupported_ops_warnings(False); analysis.uncalled_modules_warnings(False)
    result["fvcore"] = int(analysis.total())
except Exception as exc:
    result["fvcore_error"] = f"{type(exc).__name__}: {exc}"[:300]
try:
    import torchinfo
    with contextlib.redirect_stdout(io.StringIO()):
        stats = torchinfo.summary(model, input_data=[x], verbose=0)
    result["torchinfo"] = int(stats.total_mult_adds)
except Exception as exc:
    result["torchinfo_error"] = f"{type(exc).__name__}: {exc}"[:300]
try:  # attention in its math form (on CPU flop_counter counts the fused kernels as 0); grad on, so that
    # nn.MultiheadAttention takes its slow path (its fast path is one op flop_counter does not know)
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with counter, sdpa_kernel(SDPBackend.MATH):
        model(x)
    result["flop_counter"] = counter.get_total_flops() // 2
except Exception as exc:
    result["flop_counter_error"] = f"{type(exc).__name__}: {exc}"[:300]
print(json.dumps(result))
'''

INSPECT = r'''
import atexit, json, sys, time, resource
atexit.register(lambda: sys.stderr.write("\\npeak_kib %d\\n" % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
sys.argv = ["convcalc", "inspect", sys.argv[1], "--input", sys.argv[2], "--json"] + (["--kwargs", sys.argv[3]] if sys.argv[3] != "{}" else [])
from convcalc.cli import main
main()
'''


def limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_one(name: str, target: str, shape: tuple[int, ...]) -> dict:
    kwargs = {"model_name": name.split("/", 1)[1]} if target == "timm:create_model" else {}
    if target.startswith("torchvision.models.segmentation"):
        kwargs = {"weights": None, "weights_backbone": None}
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("TIMM_FUSED_ATTN", None)
    record: dict = {"name": name, "target": target, "input": list(shape)}
    shape_text = "x".join(map(str, shape))
    factory = f"{HERE}/zoo_factories.py:timm_model" if target == "timm:create_model" else target
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-c", INSPECT, factory, shape_text, json.dumps(kwargs)],
                              capture_output=True, text=True, timeout=TIMEOUT, env=env, cwd=ROOT,
                              preexec_fn=limit_memory)
        record["inspect_seconds"] = time.perf_counter() - start
        record["inspect_exit"] = done.returncode
        peak = re.findall(r"peak_kib (\d+)", done.stderr)
        record["inspect_peak_kib"] = int(peak[-1]) if peak else None
        if done.stdout.strip():
            document = json.loads(done.stdout)
            if document.get("schema") == "convcalc.inspect/1":
                record.update(traced=document["traced"], totals=document["totals"],
                              out_shape=document["output"]["shape"], warnings=document["warnings"],
                              output_rf=document["output"]["receptive_field"],
                              output_local_rf=document["output"]["local_receptive_field"],
                              opaque=document["opaque"],
                              unknown_fields=sum(1 for n in document["nodes"] if n["receptive_field"] is None))
            else:
                record["inspect_error"] = document.get("error")
        if done.returncode not in (0, 1):
            record["inspect_stderr"] = done.stderr[-1500:]
    except subprocess.TimeoutExpired:
        record["inspect_exit"] = "timeout"
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, name, target, json.dumps(list(shape)),
                               json.dumps(kwargs)], capture_output=True, text=True, timeout=TIMEOUT, env=env,
                              cwd=ROOT, preexec_fn=limit_memory)
        if done.returncode == 0:
            record["reference"] = json.loads(done.stdout.strip().splitlines()[-1])
        else:
            record["reference_error"] = done.stderr[-1500:]
    except subprocess.TimeoutExpired:
        record["reference_error"] = "timeout"
    return record


def compare(record: dict) -> dict[str, str | None]:
    """Per source: None where convcalc matches, else why not."""
    out: dict[str, str | None] = {}
    ref = record.get("reference", {})
    if record.get("inspect_exit") != 0:
        out["inspect"] = f"exit {record.get('inspect_exit')}: {record.get('inspect_error') or record.get('inspect_stderr', '')[-300:]}"
        return out
    out["inspect"] = None
    if record.get("traced") == "forward hooks":
        out["traced"] = "forward hooks"
    totals = record["totals"]
    if ref and record.get("inspect_peak_kib") and ref.get("eager_peak_kib"):
        beyond = (record["inspect_peak_kib"] - ref["eager_peak_kib"]) / 2**20
        out["memory"] = None if beyond <= 1 else f"{beyond:.2f} GiB beyond one eager forward"
    if ref:
        shapes = ref.get("out_shapes", [])
        out["shape"] = None if shapes and record.get("out_shape") == shapes[0] else f"{record.get('out_shape')} vs {shapes[:1]}"
        out["params"] = None if totals["params"] == ref["params"] else f"{totals['params']} vs {ref['params']}"
        for convention, key in (("aten", "flop_counter"), ("fvcore", "fvcore"), ("torchinfo", "torchinfo")):
            if key in ref:
                ours, theirs = totals["macs"][convention], ref[key]
                out[convention] = None if ours == theirs else f"{ours:,} vs {theirs:,} ({(ours - theirs) / max(theirs, 1):+.1%})"
            else:
                out[convention] = f"reference failed: {ref.get(key + '_error', '?')[:120]}"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--out", default=os.path.join(HERE, "zoo.jsonl"))
    parser.add_argument("--models", default=os.path.join(HERE, "zoo_models.json"),
                        help="the model list (made on the first run: choosing timm's smallest takes minutes)")
    parser.add_argument("--tests", action="store_true", help="run the tests that need torchvision, then stop")
    args = parser.parse_args()
    if args.tests:
        sys.exit(subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                  "tests/test_inspect.py", "tests/test_examples.py", "tests/test_docs.py",
                                  "-k", "torchvision"], cwd=ROOT))
    if os.path.exists(args.models):
        models = [tuple(m[:2]) + (tuple(m[2]),) for m in json.load(open(args.models))]
    else:
        models = torchvision_models() + timm_models()
        json.dump(models, open(args.models, "w"), indent=0)
    if args.only:
        models = [m for m in models if any(o in m[0] for o in args.only)]
    done = {}
    if os.path.exists(args.out) and not args.only:
        for line in open(args.out):
            record = json.loads(line)
            done[record["name"]] = record
    todo = [m for m in models if m[0] not in done]
    with open(args.out, "a") as sink, ThreadPoolExecutor(args.jobs) as pool:
        for record in pool.map(lambda m: run_one(*m), todo):
            sink.write(json.dumps(record) + "\n")
            sink.flush()
            done[record["name"]] = record
            print(record["name"], {k: v for k, v in compare(record).items() if v}, flush=True)
    report([done[m[0]] for m in models if m[0] in done])


def report(records: list[dict]) -> None:
    sources = ("inspect", "memory", "shape", "params", "aten", "fvcore", "torchinfo")
    matches = {s: 0 for s in sources}
    counted = {s: 0 for s in sources}
    hooks = opaque = 0
    for record in records:
        result = compare(record)
        for source in sources:
            if source in result:
                counted[source] += 1
                matches[source] += result[source] is None
        hooks += record.get("traced") == "forward hooks"
        opaque += "opaque" in (record.get("traced") or "")
    ratios = sorted(r["inspect_seconds"] / r["reference"]["baseline_seconds"] for r in records
                    if r.get("inspect_exit") == 0 and "baseline_seconds" in r.get("reference", {}))
    print(f"\n{len(records)} models; forward hooks {hooks}; fx with opaque modules {opaque}")
    if ratios:
        print(f"inspect's time over a process that imports, builds the model and runs one forward: median "
              f"{ratios[len(ratios) // 2]:.2f}x, largest {ratios[-1]:.2f}x")
    print("| source | matches |\n|---|---|")
    for source in sources:
        print(f"| {source} | {matches[source]} of {counted[source]} |")
    print("\nmismatches:")
    for record in records:
        bad = {k: v for k, v in compare(record).items() if v}
        if bad:
            print(f"- {record['name']}: {bad}")


if __name__ == "__main__":
    main()
