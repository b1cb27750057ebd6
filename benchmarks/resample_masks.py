"""Does a fresh training mask per epoch (``train.resample_masks``) help? Trains the default profile's image
model (``params.yaml: train`` settings) with and without resampling at one intensity and scores the test
subjects: PSNR/SSIM with 95% subject-bootstrap intervals and the paired difference (on - off).

Needs the select and masks stages to have run (``data/processed``). Prints one JSON line per run and one for
the difference.

    .venv/bin/python benchmarks/resample_masks.py --intensity high --layers 3 --batch-size 8 --epochs 12
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mrirecon.config import load_params
from mrirecon.data.slice_set import load_slice_set
from mrirecon.evaluation.uncertainty import paired_differences, subject_scores, with_uncertainty
from mrirecon.grid import GridPoint
from mrirecon.models.training import reconstruct, train_point
from mrirecon.mri.metrics import mean_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/processed"), help="folder of slices/masks parquet")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--intensity", default="high")
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--synthetic-phase", action="store_true")
    args = parser.parse_args()
    params = load_params(args.params)
    sets = {
        split: load_slice_set(args.data / "slices.parquet", args.data / "masks.parquet", args.intensity, split)
        for split in ("train", "val", "test")
    }
    test, point = (
        sets["test"],
        GridPoint("image", args.layers, args.batch_size, args.epochs, args.intensity, args.synthetic_phase),
    )
    scores = {}
    for resample in (False, True):
        settings = params.train.settings().model_copy(update={"resample_masks": resample})
        start = time.perf_counter()
        result = train_point(point, sets["train"], sets["val"], settings, verbose=0)
        recon = reconstruct(result.model, "image", test, settings=settings, synthetic_phase=args.synthetic_phase)
        scores[resample] = subject_scores(test.images, recon, test.subjects, params.evaluate.tolerance)
        metrics = with_uncertainty(mean_metrics(test.images, recon, params.evaluate.tolerance), scores[resample])
        print(
            json.dumps(
                {
                    "point": point.name,
                    "resample_masks": resample,
                    "train_s": round(time.perf_counter() - start),
                    **{k: round(metrics[k], 4) for k in ("psnr", "psnr_ci_low", "psnr_ci_high", "ssim")},
                }
            ),
            flush=True,
        )
    diff = paired_differences(scores[True], scores[False])
    print(json.dumps({"difference": "on - off", **{k: round(v, 4) for k, v in diff.items()}}), flush=True)


if __name__ == "__main__":
    main()
