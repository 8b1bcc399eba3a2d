#!/usr/bin/env python3
"""Real photos for the 224x224 benchmark rows: the RGB photos of scikit-image's sample data
and their mirror images (16 PNGs, offline: the images ship in the scikit-image wheel).

    python bench/photos224.py OUT_DIR [--crop]

--crop writes them resized (shorter side 256, bilinear) and centre-cropped to 224x224, so that
xaudit (with a configuration without `resize`) and a Python peer read exactly the same pixels.
"""
import argparse
import os

import skimage.data as data
from PIL import Image

NAMES = ["chelsea", "coffee", "rocket", "astronaut", "immunohistochemistry", "retina",
         "hubble_deep_field", "colorwheel"]


def crop224(im):
    w, h = im.size
    s = 256 / min(w, h)
    im = im.resize((round(w * s), round(h * s)), Image.BILINEAR)
    w, h = im.size
    left, top = (w - 224) // 2, (h - 224) // 2
    return im.crop((left, top, left + 224, top + 224))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--crop", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    k = 0
    for name in NAMES:
        im = Image.fromarray(getattr(data, name)()[..., :3])
        for mirror in (False, True):
            j = im.transpose(Image.FLIP_LEFT_RIGHT) if mirror else im
            if a.crop:
                j = crop224(j)
            j.save(os.path.join(a.out, f"{k:02d}_{name}{'_f' if mirror else ''}.png"))
            k += 1
    print(f"{k} photos in {a.out}")


if __name__ == "__main__":
    main()
