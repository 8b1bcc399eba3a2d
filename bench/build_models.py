#!/usr/bin/env python3
"""Builds the benchmark's second model and its image pool (peer side of the benchmark).

Run from anywhere with the bench venv (scripts/setup-bench-env.sh prints its python):

    "$(bash scripts/setup-bench-env.sh)" bench/build_models.py

Writes, under bench/build/:
  resnet18_digits.pt          TorchScript (torch.jit.script(model.eval()).save, not frozen),
                              forward(x:[N,1,28,28]) -> [N,10] logits
  resnet18_digits.state.pt    the same weights as an eager state_dict (for Quantus/Captum)
  resnet18_digits.json        accuracies and training record
  digits_all/<label>/<NNNN>.png   all 1797 sklearn load_digits() images, converted exactly as
                              fixtures/build_fixtures.py converts the test split (NNNN = index)
  smooth224_digits.pt         a smooth 224x224 classifier for the attack section: softplus and
                              average pooling (twice differentiable), trained on the same
                              split upsampled bilinearly to 224x224; forward(x:[N,1,224,224])
  digits224.toml              its xaudit preprocessing (the 28x28 PNGs resized to 224)
  .stamp                      sha256 of this script; outputs are kept while it matches

The model is torchvision's resnet18(num_classes=10) with conv1 replaced by a 1-channel
7x7/2 convolution, trained with Adam on the 1437 training images of the fixtures' split
(train_test_split(test_size=0.2, stratify=y, random_state=0)), input x = (u8/255 - 0.5)/0.5.
Deterministic: fixed seeds, CPU, 2 threads, deterministic algorithms, PYTHONHASHSEED=0.
"""
import hashlib
import json
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUILD = os.path.join(HERE, "build")
PT = os.path.join(BUILD, "resnet18_digits.pt")
STATE = os.path.join(BUILD, "resnet18_digits.state.pt")
META = os.path.join(BUILD, "resnet18_digits.json")
STAMP = os.path.join(BUILD, ".stamp")
SMOOTH224 = os.path.join(BUILD, "smooth224_digits.pt")
CONFIG224 = os.path.join(BUILD, "digits224.toml")
SMOOTH224_EPOCHS = 20
DIGITS_ALL = os.path.join(BUILD, "digits_all")
FIXTURE_TEST = os.path.join(ROOT, "fixtures", "data", "digits", "test")

SEED = 0
EPOCHS = 6
BATCH = 64
MAX_LR = 3e-3
N_DIGITS = 1797

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def make_resnet18():
    """torchvision resnet18(num_classes=10), conv1 -> Conv2d(1, 64, 7, stride 2, padding 3, no bias)."""
    import torchvision

    m = torchvision.models.resnet18(num_classes=10)
    m.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return m


def script_sha256():
    with open(os.path.abspath(__file__), "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def up_to_date(sha):
    if not all(os.path.isfile(p) for p in (PT, STATE, META, STAMP, SMOOTH224, CONFIG224)):
        return False
    with open(STAMP) as fh:
        if fh.read().strip() != sha:
            return False
    n = sum(len(files) for _, _, files in os.walk(DIGITS_ALL)) if os.path.isdir(DIGITS_ALL) else 0
    return n == N_DIGITS


def upsample_to_uint8(img01, size):
    """[H,W] float in [0,1] -> [size,size] uint8; same arithmetic as fixtures/build_fixtures.py."""
    t = torch.from_numpy(np.asarray(img01, dtype=np.float32))[None, None]
    up = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)[0, 0]
    return np.clip(np.round(up.numpy().astype(np.float64) * 255.0), 0, 255).astype(np.uint8)


def to_model_space(u8):
    """[N,28,28] uint8 -> [N,1,28,28] float32, x = (u8/255 - 0.5)/0.5 (the fixtures' arithmetic)."""
    x = u8.astype(np.float32)[:, None] / np.float32(255.0)
    return torch.from_numpy((x - np.float32(0.5)) / np.float32(0.5))


def accuracy(model, x, y):
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


class Smooth224(nn.Module):
    """A small 224x224 classifier that is twice differentiable everywhere (softplus, average
    pooling), so the exact second-order attack applies to it."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 7, stride=4, padding=3)
        self.act1 = nn.Softplus()
        self.pool1 = nn.AvgPool2d(2)
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.act2 = nn.Softplus()
        self.pool2 = nn.AvgPool2d(2)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
        self.act3 = nn.Softplus()
        self.fc = nn.Linear(64, 10)

    @torch.jit.export
    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.act1(self.conv1(x)))
        x = self.pool2(self.act2(self.conv2(x)))
        return self.act3(self.conv3(x))

    @torch.jit.export
    def head(self, a: torch.Tensor) -> torch.Tensor:
        return self.fc(a.mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_smooth224(x_tr, y_tr, x_te, y_te):
    """Trains Smooth224 on the split upsampled to 224x224; returns its metrics."""
    up = lambda x: F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)  # noqa: E731
    torch.manual_seed(SEED)
    m = Smooth224()
    gen = torch.Generator().manual_seed(SEED)
    n = len(y_tr)
    steps = (n + BATCH - 1) // BATCH
    opt = torch.optim.Adam(m.parameters(), lr=1e-2 / 25)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, epochs=SMOOTH224_EPOCHS, steps_per_epoch=steps)
    for _ in range(SMOOTH224_EPOCHS):
        perm = torch.randperm(n, generator=gen)
        for s in range(0, n, BATCH):
            b = perm[s : s + BATCH]
            loss = F.cross_entropy(m(up(x_tr[b])), y_tr[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    m.eval()
    torch.jit.script(m).save(SMOOTH224)
    with open(CONFIG224, "w") as fh:
        fh.write("# xaudit preprocessing of bench/build/smooth224_digits.pt (written by build_models.py)\n"
                 "[preprocess]\nchannels = 1\nsize = [224, 224]\nresize = 224\nmean = [0.5]\nstd = [0.5]\n")
    acc = accuracy(m, up(x_te), y_te)
    print(f"smooth224_digits: test accuracy {acc:.4f}", flush=True)
    return {"test_accuracy": acc, "epochs": SMOOTH224_EPOCHS, "architecture": "softplus + average pooling, stride-4 stem"}


def main():
    # TorchScript writes module constants in set-iteration order (string hash seed): pin it so
    # the saved .pt is byte-for-byte reproducible, as fixtures/build_fixtures.py does.
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, os.path.abspath(__file__)] + sys.argv[1:])
    sha = script_sha256()
    if up_to_date(sha) and "--force" not in sys.argv[1:]:
        with open(META) as fh:
            meta = json.load(fh)
        print(f"bench/build is up to date (test accuracy {meta['test_accuracy']:.4f})")
        return

    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    t0 = time.time()
    os.makedirs(BUILD, exist_ok=True)
    if os.path.exists(STAMP):
        os.remove(STAMP)

    # ---- images: all 1797 digits, converted exactly like the fixtures' test split
    d = load_digits()
    images, y = d.images, d.target
    u8 = np.stack([upsample_to_uint8(images[i] / 16.0, 28) for i in range(len(y))])
    if os.path.isdir(DIGITS_ALL):
        shutil.rmtree(DIGITS_ALL)
    for i in range(len(y)):
        path = os.path.join(DIGITS_ALL, str(y[i]), f"{i:04d}.png")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(u8[i], mode="L").save(path, format="PNG")
    # cross-check against the committed fixture PNGs (the test split)
    n_checked = 0
    if os.path.isdir(FIXTURE_TEST):
        for label in sorted(os.listdir(FIXTURE_TEST)):
            for name in sorted(os.listdir(os.path.join(FIXTURE_TEST, label))):
                fixture = np.array(Image.open(os.path.join(FIXTURE_TEST, label, name)))
                ours = np.array(Image.open(os.path.join(DIGITS_ALL, label, name)))
                if not np.array_equal(fixture, ours):
                    sys.exit(f"digits_all/{label}/{name} differs from the fixture PNG")
                n_checked += 1
    print(f"wrote {len(y)} PNGs to {os.path.relpath(DIGITS_ALL, ROOT)} "
          f"({n_checked} identical to fixtures/data/digits/test)", flush=True)

    # ---- split and tensors (same split as the fixtures)
    idx = np.arange(len(y))
    idx_tr, idx_te = train_test_split(idx, test_size=0.2, stratify=y, random_state=0)
    x_tr, y_tr = to_model_space(u8[idx_tr]), torch.from_numpy(y[idx_tr]).long()
    x_te, y_te = to_model_space(u8[idx_te]), torch.from_numpy(y[idx_te]).long()

    # ---- train
    torch.manual_seed(SEED)
    model = make_resnet18()
    gen = torch.Generator().manual_seed(SEED)
    opt = torch.optim.Adam(model.parameters(), lr=MAX_LR / 25)
    n = len(y_tr)
    steps = (n + BATCH - 1) // BATCH
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=MAX_LR, epochs=EPOCHS, steps_per_epoch=steps)
    t_train = time.time()
    for ep in range(EPOCHS):
        model.train()
        perm = torch.randperm(n, generator=gen)
        for s in range(0, n, BATCH):
            b = perm[s : s + BATCH]
            loss = F.cross_entropy(model(x_tr[b]), y_tr[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        print(f"epoch {ep + 1}/{EPOCHS}: last batch loss {loss.item():.4f} "
              f"({time.time() - t_train:.1f} s)", flush=True)
    train_s = time.time() - t_train
    model.eval()
    tr_acc, te_acc = accuracy(model, x_tr, y_tr), accuracy(model, x_te, y_te)
    print(f"resnet18_digits: train accuracy {tr_acc:.4f}, test accuracy {te_acc:.4f} "
          f"({int(round(te_acc * len(y_te)))}/{len(y_te)}), training {train_s:.1f} s", flush=True)

    smooth = build_smooth224(x_tr, y_tr, x_te, y_te)

    # ---- export
    torch.save(model.state_dict(), STATE)
    sm = torch.jit.script(model.eval())
    sm.save(PT)
    loaded = torch.jit.load(PT)
    with torch.no_grad():
        diff = float((loaded(x_te) - model(x_te)).abs().max())
    if diff > 1e-5:
        sys.exit(f"TorchScript logits differ from eager by {diff}")
    import torchvision

    meta = {
        "model": "torchvision resnet18(num_classes=10), conv1=Conv2d(1,64,7,stride=2,padding=3,bias=False)",
        "input": "[N,1,28,28], x = (u8/255 - 0.5)/0.5",
        "train_accuracy": tr_acc,
        "test_accuracy": te_acc,
        "n_train": int(n),
        "n_test": int(len(y_te)),
        "epochs": EPOCHS,
        "batch": BATCH,
        "optimizer": f"Adam + OneCycleLR(max_lr={MAX_LR})",
        "seed": SEED,
        "train_seconds": round(train_s, 2),
        "threads": torch.get_num_threads(),
        "script_vs_eager_max_abs_diff": diff,
        "torch_version": torch.__version__,
        "torchvision_version": torchvision.__version__,
        "script_sha256": sha,
        "smooth224": smooth,
    }
    with open(META, "w") as fh:
        json.dump(meta, fh, indent=2)
        fh.write("\n")
    with open(STAMP, "w") as fh:
        fh.write(sha + "\n")
    print(f"wrote {os.path.relpath(PT, ROOT)}, {os.path.relpath(STATE, ROOT)}, "
          f"{os.path.relpath(META, ROOT)} in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
