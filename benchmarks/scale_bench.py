"""Scale and memory of the data stages: ingest + select + masks on N full-size volumes, for several N.

What is measured
    For each N in ``--n`` (default 10 20 40) a fresh Python process runs the three data stages'
    core functions on N synthetic full-resolution-sized IXI-like volumes (``--size``, default
    256 256 150 int16, see ``_common.synthetic_head``; ``--distinct`` different volumes,
    hard-linked under N different subject names):

    * ``mrirecon.stages.ingest.ingest`` with ``compute.ingest_workers`` worker processes (``--workers``),
    * ``mrirecon.stages.select.select_slices`` with ``slices`` and ``split`` from ``params.yaml`` but
      ``slices.size`` = ``--slice-size`` (default 256, full-size slices),
    * ``mrirecon.stages.masks.generate_masks`` with ``masks`` from ``params.yaml``.

    Time: each stage's wall time inside the child (imports excluded) and their sum. A line
    ``t = a + b N`` is fitted by least squares to the sums and extrapolated to ``--extrapolate``
    volumes (default 581, the full IXI T1 set).

    Memory, per N (each N in its own process, so nothing carries over):
    * ``peak tree RSS``: the summed RSS of the child and its ingest workers, sampled every 50 ms
      (psutil); shared pages counted once per process, so an upper bound;
    * ``main RSS``: ``ru_maxrss`` of the child process itself (``RUSAGE_SELF``);
    * ``worker RSS``: largest ``ru_maxrss`` among its ingest workers (``RUSAGE_CHILDREN``).
    Peak memory must not grow with N (streaming, one volume per row group); target < 2 GB.

Output: a table on stdout and the key ``"scale"`` of ``reports/bench.json`` (merged).

Usage:
    .venv/bin/python benchmarks/scale_bench.py                          # N = 10 20 40, 256x256x150
    .venv/bin/python benchmarks/scale_bench.py --n 2 3 --size 64 64 20 --slice-size 64   # tiny smoke run
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    ROOT,
    RssSampler,
    add_output_options,
    add_synthetic_options,
    doc_parser,
    environment,
    fit_line,
    link_subset,
    make_distinct_volumes,
    print_table,
    publish,
    write_synthetic_set,
)

TARGET_PEAK_MB = 2048.0
#: Peak memory counts as "flat" when the largest N's peak is within this of the smallest N's.
FLAT_TOLERANCE = 0.15


def child(args: argparse.Namespace) -> None:
    """Run the three stages on ``args.source`` and print one JSON line with timings and ru_maxrss."""
    from mrirecon.config import load_params
    from mrirecon.data.sources import resolve_source
    from mrirecon.stages.ingest import ingest
    from mrirecon.stages.masks import generate_masks
    from mrirecon.stages.select import select_slices

    params = load_params(args.params)
    slice_params = params.slices.model_copy(update={"size": args.slice_size})
    out = Path(args.out)
    workers = args.workers or params.compute.ingest_workers
    stages = {}
    start = time.perf_counter()
    source = resolve_source(str(args.source), None, out)
    summary = ingest(source, out / "volumes.parquet", out / "rejected.csv", workers=workers)
    stages["ingest_s"] = time.perf_counter() - start
    start = time.perf_counter()
    splits = select_slices(out / "volumes.parquet", out / "slices.parquet", slice_params, params.split)
    stages["select_s"] = time.perf_counter() - start
    start = time.perf_counter()
    accel = generate_masks(
        out / "slices.parquet",
        out / "masks.parquet",
        params.masks.intensity_list(),
        params.masks.type,
        params.masks.seed,
    )
    stages["masks_s"] = time.perf_counter() - start
    kb = 1024  # ru_maxrss is in KiB on Linux
    print(
        json.dumps(
            {
                **stages,
                "total_s": sum(stages.values()),
                "accepted": len(summary.accepted),
                "rejected": len(summary.rejected),
                "splits": splits,
                "achieved_acceleration": accel,
                "ingest_workers": workers,
                "main_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * kb / 2**20,
                "worker_maxrss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * kb / 2**20,
                "bytes": {
                    name: (out / name).stat().st_size for name in ("volumes.parquet", "slices.parquet", "masks.parquet")
                },
            }
        )
    )


def run_child(source: Path, out: Path, args: argparse.Namespace) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--source",
        str(source),
        "--out",
        str(out),
        "--params",
        str(args.params),
        "--slice-size",
        str(args.slice_size),
    ]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with RssSampler(proc.pid) as sampler:
        stdout, stderr = proc.communicate()
    wall = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"child for {source} failed (exit {proc.returncode}):\n{stderr[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result.update(process_wall_s=wall, peak_tree_rss_mb=sampler.peak_mb)
    return result


def main() -> None:
    parser = doc_parser(__doc__)
    parser.add_argument("--n", type=int, nargs="+", default=[10, 20, 40], help="volume counts (default 10 20 40)")
    add_synthetic_options(parser)
    parser.add_argument("--slice-size", type=int, default=256, help="slices.size for selection (default 256)")
    parser.add_argument(
        "--workers", type=int, default=None, help="ingest workers (default: compute.ingest_workers of --params)"
    )
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml", help="params file (default params.yaml)")
    parser.add_argument("--extrapolate", type=int, default=581, help="extrapolate wall time to this N (default 581)")
    parser.add_argument("--tmp", type=Path, default=None, help="folder for the synthetic files (default: system temp)")
    add_output_options(parser)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    counts = sorted(set(args.n))
    shape = tuple(args.size)
    results: dict[int, dict] = {}
    with tempfile.TemporaryDirectory(prefix="scale-bench-", dir=args.tmp) as tmp:
        tmp = Path(tmp)
        print(
            f"generating {max(counts)} synthetic volumes of {shape} ({args.distinct} distinct, hard links)", flush=True
        )
        volumes = make_distinct_volumes(shape, min(args.distinct, max(counts)))
        files = write_synthetic_set(tmp / "all", max(counts), volumes, link=True)
        del volumes
        for n in counts:
            source = tmp / f"src-{n}"
            link_subset(files[:n], source)
            results[n] = run_child(source, tmp / f"out-{n}", args)
            r = results[n]
            if r["accepted"] != n:
                sys.exit(f"N={n}: {r['accepted']} volumes accepted, {r['rejected']} rejected")
            print(
                f"  N={n}: {r['total_s']:.1f} s (ingest {r['ingest_s']:.1f}, select {r['select_s']:.1f}, "
                f"masks {r['masks_s']:.1f}), peak tree RSS {r['peak_tree_rss_mb']:.0f} MB",
                flush=True,
            )

    intercept, slope = fit_line(counts, [results[n]["total_s"] for n in counts])
    predicted = intercept + slope * args.extrapolate
    peaks = [results[n]["peak_tree_rss_mb"] for n in counts]
    growth = (peaks[-1] - peaks[0]) / peaks[0] if peaks[0] else 0.0
    flat = growth <= FLAT_TOLERANCE
    under_target = max(peaks) < TARGET_PEAK_MB

    print_table(
        [
            "N",
            "ingest s",
            "select s",
            "masks s",
            "total s",
            "s/volume",
            "process s",
            "peak tree RSS MB",
            "main RSS MB",
            "worker RSS MB",
        ],
        [
            [
                n,
                r["ingest_s"],
                r["select_s"],
                r["masks_s"],
                r["total_s"],
                r["total_s"] / n,
                r["process_wall_s"],
                r["peak_tree_rss_mb"],
                r["main_maxrss_mb"],
                r["worker_maxrss_mb"],
            ]
            for n, r in results.items()
        ],
        title=f"Data stages on synthetic {'x'.join(map(str, shape))} volumes, "
        f"slices {args.slice_size}x{args.slice_size}, {results[counts[0]]['ingest_workers']} ingest workers",
    )
    print(
        f"\nfit: total = {intercept:.2f} s + {slope:.3f} s x N  ->  N={args.extrapolate}: {predicted:.0f} s "
        f"({predicted / 60:.1f} min)"
        + ("  [slope <= 0: fixed costs dominate, extrapolation meaningless; use larger N]" if slope <= 0 else "")
    )
    print(
        f"peak tree RSS: {peaks[0]:.0f} MB at N={counts[0]} -> {peaks[-1]:.0f} MB at N={counts[-1]} "
        f"({growth:+.0%}): {'flat' if flat else 'GROWS with N'}; "
        f"{'under' if under_target else 'OVER'} the {TARGET_PEAK_MB:.0f} MB target"
    )
    figures = {
        "environment": environment(),
        "shape": list(shape),
        "slice_size": args.slice_size,
        "distinct": args.distinct,
        "per_n": {str(n): r for n, r in results.items()},
        "fit": {"intercept_s": intercept, "slope_s_per_volume": slope},
        "extrapolated": {"n": args.extrapolate, "total_s": predicted},
        "peak_rss": {
            "target_mb": TARGET_PEAK_MB,
            "max_mb": max(peaks),
            "growth": growth,
            "flat": flat,
            "under_target": under_target,
        },
    }
    publish(args, "scale", figures)


if __name__ == "__main__":
    main()
