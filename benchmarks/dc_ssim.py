"""Where does the data-consistent image model lose SSIM? Whole-image SSIM against SSIM inside and outside
the head, for the magnitude U-Net, the data-consistent U-Net (one cascade) and the same with the magnitude
refinement after the last data-consistency step (``train.refine_filters``).

Trains each variant once (3 levels, 16 filters, batch 16, ``--epochs``) on the project's train split of one
intensity and scores the test split. The head is ``reference > 0.05`` (normalised units) closed and
hole-filled (scipy.ndimage); regional SSIM is the mean of skimage's SSIM map (7x7 uniform window, the
reference slice maximum as data range, 3-pixel border cropped as skimage does) over each region. Needs the
select and masks stages to have run (``data/processed``). Prints one JSON line per variant.

    .venv/bin/python benchmarks/dc_ssim.py --intensity medium --epochs 20     # about 15 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage.metrics import structural_similarity

from mrirecon.config import ModelSettings
from mrirecon.data.slice_set import load_slice_set
from mrirecon.grid import GridPoint
from mrirecon.models.training import reconstruct, train_point
from mrirecon.mri.metrics import mean_metrics

VARIANTS = {
    "magnitude U-Net": ModelSettings(),
    "DC, 1 cascade": ModelSettings(image_data_consistency=True),
    "DC + magnitude refinement (16)": ModelSettings(image_data_consistency=True, refine_filters=16),
}


def head_mask(reference: np.ndarray) -> np.ndarray:
    """Boolean ``(H, W)`` head region of a normalised reference slice."""
    return ndimage.binary_fill_holes(ndimage.binary_closing(reference > 0.05, iterations=3))


def regional_ssim(references: np.ndarray, estimates: np.ndarray) -> tuple[float, float]:
    """Mean SSIM inside and outside the head over a stack ``(N, H, W)``."""
    inside, outside = [], []
    for ref, est in zip(references.astype(np.float64), estimates.astype(np.float64)):
        _, smap = structural_similarity(ref, est, data_range=ref.max(), win_size=7, gaussian_weights=False, full=True)
        head, core = head_mask(ref), np.zeros(ref.shape, bool)
        core[3:-3, 3:-3] = True
        inside.append(smap[head & core].mean())
        outside.append(smap[~head & core].mean())
    return float(np.mean(inside)), float(np.mean(outside))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/processed"), help="folder of slices/masks parquet")
    parser.add_argument("--intensity", default="medium")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), help=f"any of {list(VARIANTS)}")
    args = parser.parse_args()
    sets = {
        split: load_slice_set(args.data / "slices.parquet", args.data / "masks.parquet", args.intensity, split)
        for split in ("train", "val", "test")
    }
    test = sets["test"]
    for name in args.variants:
        settings = VARIANTS[name]
        start = time.perf_counter()
        result = train_point(
            GridPoint("image", 3, 16, args.epochs, args.intensity), sets["train"], sets["val"], settings, verbose=0
        )
        recon = reconstruct(result.model, "image", test, settings=settings)
        metrics = mean_metrics(test.images, recon, 0.05)
        head, background = regional_ssim(test.images, recon)
        outside = [est[~head_mask(ref)].mean() for ref, est in zip(test.images, recon)]
        print(
            json.dumps(
                {
                    "variant": name,
                    "intensity": args.intensity,
                    "epochs": args.epochs,
                    "psnr_db": round(metrics["psnr"], 2),
                    "ssim": round(metrics["ssim"], 3),
                    "ssim_head": round(head, 3),
                    "ssim_background": round(background, 3),
                    "background_mean": round(float(np.mean(outside)), 4),
                    "train_s": round(time.perf_counter() - start),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
