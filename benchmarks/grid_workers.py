"""Speed-up of training the grid with 2 worker processes over 1 (prints a table, writes JSON).

Usage:  MRIRECON_SOURCE=/abs/path/ixi-t1-2mm .venv/bin/python benchmarks/grid_workers.py [--epochs 3]

Builds a temp copy of the project with the quick profile (40 subjects), runs the data stages once,
then times `mrirecon train --workers N` for N = 1 and 2 on the same 4-point grid (image and
k-space models at 4x and 8x), each from scratch. Writes reports/bench_workers.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _common import ROOT, doc_parser, make_project_copy, project_env


def main() -> None:
    parser = doc_parser(__doc__)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    source = os.environ.get("MRIRECON_SOURCE")
    if not source:
        sys.exit("set MRIRECON_SOURCE to the absolute path of the IXI T1 files")
    env = project_env(Path(source))
    with tempfile.TemporaryDirectory() as tmp:
        base = make_project_copy(Path(tmp) / "base")
        params = yaml.safe_load((base / "params.yaml").read_text())
        params["train"]["grid"].update(model=["image", "kspace"], intensity=["medium", "high"], epochs=[args.epochs])
        (base / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        subprocess.run(["mrirecon", "run", "--until", "masks"], cwd=base, env=env, check=True, capture_output=True)
        figures = {}
        for workers in (1, 2):
            project = Path(tmp) / f"w{workers}"
            shutil.copytree(base, project, symlinks=True)
            start = time.perf_counter()
            subprocess.run(
                ["mrirecon", "train", "--workers", str(workers)], cwd=project, env=env, check=True, capture_output=True
            )
            figures[workers] = time.perf_counter() - start
    speedup = figures[1] / figures[2]
    print(f"{'workers':>8} {'wall time (s)':>14}")
    for workers, seconds in figures.items():
        print(f"{workers:>8} {seconds:>14.1f}")
    print(
        f"speed-up of 2 workers over 1: {speedup:.2f}x on {os.cpu_count()} cores (4 grid points, {args.epochs} epochs)"
    )
    out = ROOT / "reports" / "bench_workers.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "wall_time_s": figures,
                "speedup_2_over_1": speedup,
                "cores": os.cpu_count(),
                "grid_points": 4,
                "epochs": args.epochs,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
