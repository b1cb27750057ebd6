"""Ingestion against its physical limit: wall time of ``ingest()`` / time of ``gzip -dc`` of the same files.

What is measured
    ``mrirecon.stages.ingest.ingest(source, volumes.parquet, rejected.csv, workers=W)`` (the ingest stage
    without Prefect/DVC: read, sha256, gunzip, NIfTI checks, reorientation to RAS, float32,
    statistics, zstd parquet write) is timed for W in ``--workers`` (default 1 and 2) on

    (a) the real 2 mm IXI sample from ``MRIRECON_SOURCE`` (150 volumes of 120x120x90 uint8), and
    (b) a synthetic full-resolution-sized set: ``--synthetic N`` (default 50) IXI-like volumes of
        ``--size`` (default 256 256 150, int16, IXI's on-disk orientation P,S,R; a head with
        smooth texture and Rician-like noise, ~8.7 MB per .nii.gz like real IXI files), written
        as ``.nii.gz`` files into a temp directory and as an IXI-style ``IXI-T1.tar``
        (members ``IXI-T1/IXI<nnn>-Guys-<nnnn>-T1.nii.gz``); both are ingested.

The floor ("physical limit") is decompression alone: ``gzip -dc FILES > /dev/null`` (one
process; for the tar: ``tar -xOf IXI-T1.tar | gzip -dc > /dev/null``), median of
``--floor-repeats`` runs; the first run also warms the page cache, so neither side pays for
disk reads. ratio = ingest wall time / floor; target <= 3. With W workers the table also
shows the ratio against W ``gzip -dc`` processes run in parallel on the W shares of the
files (the floor for W cores).

Output: a table on stdout and the key ``"ingest"`` of ``reports/bench.json`` (merged).

Usage:
    MRIRECON_SOURCE=/abs/path/ixi-t1-2mm .venv/bin/python benchmarks/ingest_bench.py
    ... --synthetic 50 --size 256 256 150 --workers 1 2
    ... --sample-limit 3 --synthetic 3 --size 64 64 20      # tiny smoke run
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    add_output_options,
    add_synthetic_options,
    doc_parser,
    environment,
    make_distinct_volumes,
    print_table,
    publish,
    require_source,
    write_ixi_tar,
    write_synthetic_set,
)

from mrirecon.data.sources import resolve_source
from mrirecon.data.volumes import is_ixi_t1_name
from mrirecon.stages.ingest import ingest  # imported before any timing (nibabel, pyarrow, numpy load here)

TARGET_RATIO = 3.0


def gzip_floor(paths: list[Path], processes: int = 1) -> float:
    """Wall time of ``gzip -dc`` over ``paths`` split into ``processes`` concurrent shares."""
    shares = [paths[i::processes] for i in range(processes)]
    start = time.perf_counter()
    procs = [
        subprocess.Popen(["gzip", "-dc", *map(str, share)], stdout=subprocess.DEVNULL) for share in shares if share
    ]
    codes = [p.wait() for p in procs]
    elapsed = time.perf_counter() - start
    if any(codes):
        raise RuntimeError(f"gzip -dc failed (exit codes {codes})")
    return elapsed


def tar_floor(tar_path: Path) -> float:
    """Wall time of ``tar -xOf ARCHIVE | gzip -dc > /dev/null`` (members are concatenated gzip streams)."""
    start = time.perf_counter()
    tar = subprocess.Popen(["tar", "-xOf", str(tar_path)], stdout=subprocess.PIPE)
    gz = subprocess.Popen(["gzip", "-dc"], stdin=tar.stdout, stdout=subprocess.DEVNULL)
    tar.stdout.close()
    codes = (gz.wait(), tar.wait())
    elapsed = time.perf_counter() - start
    if any(codes):
        raise RuntimeError(f"tar | gzip -dc failed (exit codes {codes})")
    return elapsed


def median_time(fn, repeats: int, warm_up: bool = True) -> float:
    """Median wall time of ``repeats`` calls of ``fn`` (after one discarded call that warms the page cache)."""
    if warm_up:
        fn()
    return statistics.median(fn() for _ in range(max(1, repeats)))


def time_ingest(source_path: Path, workers: int, out_dir: Path, limit: int | None, expected: int) -> dict:
    """One timed ``ingest()`` run; checks that ``expected`` volumes were accepted."""
    source = resolve_source(str(source_path), None, out_dir)
    volumes = out_dir / f"volumes-w{workers}.parquet"
    start = time.perf_counter()
    summary = ingest(source, volumes, out_dir / f"rejected-w{workers}.csv", limit=limit, workers=workers)
    wall = time.perf_counter() - start
    if len(summary.accepted) != expected:
        raise RuntimeError(
            f"ingest of {source_path} accepted {len(summary.accepted)} volumes, expected {expected} "
            f"({len(summary.rejected)} rejected: {[r.reason for r in summary.rejected[:3]]})"
        )
    out = {"workers": workers, "wall_s": wall, "volumes": expected, "parquet_mb": volumes.stat().st_size / 1e6}
    volumes.unlink()
    return out


def breakdown(files: list[Path], count: int = 5) -> dict:
    """Median per-volume seconds of ingest's parts on the first ``count`` files (in this process).

    ``sha256`` and ``gunzip`` (zlib) are also inside ``load_volume`` (checks, NIfTI parse,
    reorientation, float32); ``stats`` and ``encode`` follow it in ``decode_file``. The rest of
    an ingest run is reading the files and writing the zstd parquet (main process).
    """
    import gzip
    import hashlib

    from mrirecon.data.storage import encode_array
    from mrirecon.data.volumes import intensity_stats, load_volume

    parts: dict[str, list[float]] = {
        "read": [],
        "sha256": [],
        "gunzip": [],
        "load_volume": [],
        "stats": [],
        "encode": [],
    }
    for path in files[:count]:
        t0 = time.perf_counter()
        raw = path.read_bytes()
        t1 = time.perf_counter()
        hashlib.sha256(raw).hexdigest()
        t2 = time.perf_counter()
        gzip.decompress(raw)
        t3 = time.perf_counter()
        volume = load_volume(path.name, raw)
        t4 = time.perf_counter()
        intensity_stats(volume.data)
        t5 = time.perf_counter()
        encode_array(volume.data)
        t6 = time.perf_counter()
        for key, value in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)):
            parts[key].append(value)
    return {key: statistics.median(values) for key, values in parts.items() if values}


def bench_set(
    label: str,
    source_path: Path,
    files: list[Path],
    workers: list[int],
    out_dir: Path,
    floor_repeats: int,
    limit: int | None = None,
    tar_path: Path | None = None,
) -> dict:
    """Floors and ingest runs of one source: the directory ``source_path`` holding ``files``, or the tar
    ``tar_path`` made of them (its floor is ``tar -xOf | gzip -dc``; the parallel floor always runs
    on ``files``)."""
    compressed = sum(p.stat().st_size for p in files)
    floor = median_time(lambda: tar_floor(tar_path) if tar_path else gzip_floor(files), floor_repeats)
    parallel = {
        w: median_time(lambda w=w: gzip_floor(files, w), floor_repeats, warm_up=False) for w in workers if w > 1
    }
    # untimed warm-up on one file: the first ingest() in a process pays ~1 s of lazy initialisation
    warm = resolve_source(str(tar_path or source_path), None, out_dir)
    ingest(warm, out_dir / "warm-up.parquet", out_dir / "warm-up.csv", limit=1)
    runs = []
    for w in workers:
        run = time_ingest(tar_path or source_path, w, out_dir, limit, len(files))
        run["ratio"] = run["wall_s"] / floor
        run["ratio_vs_parallel_floor"] = run["wall_s"] / parallel[w] if w in parallel else run["ratio"]
        run["compressed_mb_per_s"] = compressed / 1e6 / run["wall_s"]
        run["volumes_per_s"] = len(files) / run["wall_s"]
        run["meets_target"] = run["ratio"] <= TARGET_RATIO
        runs.append(run)
        print(
            f"  {label}: workers={w} ingest {run['wall_s']:.2f} s, floor {floor:.2f} s, ratio {run['ratio']:.2f}",
            flush=True,
        )
    parts = breakdown(files) if not tar_path else None
    return {
        "source": str(tar_path or source_path),
        "kind": "tar" if tar_path else "directory",
        "files": len(files),
        "per_volume_breakdown_s": parts,
        "compressed_mb": compressed / 1e6,
        "floor_gzip_s": floor,
        "floor_gzip_parallel_s": {str(w): t for w, t in parallel.items()},
        "runs": runs,
    }


def main() -> None:
    parser = doc_parser(__doc__)
    parser.add_argument(
        "--synthetic",
        type=int,
        default=50,
        metavar="N",
        help="synthetic full-size volumes (default 50; 0 skips part b)",
    )
    add_synthetic_options(parser)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="ingest worker counts (default 1 2)")
    parser.add_argument(
        "--sample-limit",
        type=int,
        default=None,
        metavar="N",
        help="only the first N files of the 2 mm sample (default all 150)",
    )
    parser.add_argument("--skip-sample", action="store_true", help="skip part (a), the real 2 mm sample")
    parser.add_argument("--skip-tar", action="store_true", help="skip ingesting the synthetic set as a tar")
    parser.add_argument("--floor-repeats", type=int, default=3, help="gzip floor runs, median taken (default 3)")
    parser.add_argument("--gzip-level", type=int, default=6, help="gzip level of the synthetic files (default 6)")
    parser.add_argument("--tmp", type=Path, default=None, help="folder for the synthetic files (default: system temp)")
    add_output_options(parser)
    args = parser.parse_args()

    figures: dict = {"target_ratio": TARGET_RATIO, "environment": environment(), "workers": args.workers}
    rows = []

    def add_rows(label: str, result: dict) -> None:
        for run in result["runs"]:
            rows.append(
                [
                    label,
                    result["files"],
                    result["compressed_mb"],
                    run["workers"],
                    run["wall_s"],
                    result["floor_gzip_s"],
                    run["ratio"],
                    run["ratio_vs_parallel_floor"],
                    run["volumes_per_s"],
                    "yes" if run["meets_target"] else "NO",
                ]
            )

    with tempfile.TemporaryDirectory(prefix="ingest-bench-", dir=args.tmp) as tmp:
        tmp = Path(tmp)
        if not args.skip_sample:
            source = require_source()
            if source.is_dir():
                files = sorted((p for p in source.iterdir() if is_ixi_t1_name(p.name)), key=lambda p: p.name)
                files = files[: args.sample_limit] if args.sample_limit else files
                print(f"(a) real sample: {len(files)} files from {source}", flush=True)
                result = bench_set(
                    "sample", source, files, args.workers, tmp, args.floor_repeats, limit=args.sample_limit
                )
            else:
                sys.exit(f"MRIRECON_SOURCE={source} is not a directory; this benchmark needs the 2 mm sample folder")
            figures["sample"] = result
            add_rows("2 mm sample (dir)", result)
        if args.synthetic > 0:
            shape = tuple(args.size)
            print(f"(b) synthetic: {args.synthetic} volumes of {shape} int16 ({args.distinct} distinct)", flush=True)
            volumes = make_distinct_volumes(shape, min(args.distinct, args.synthetic), args.gzip_level)
            folder = tmp / "synthetic"
            files = write_synthetic_set(folder, args.synthetic, volumes)  # real copies: n files' bytes read
            del volumes
            figures["synthetic"] = {
                "shape": list(shape),
                "dtype": "int16",
                "distinct": args.distinct,
                "gzip_level": args.gzip_level,
            }
            result = bench_set("synthetic dir", folder, files, args.workers, tmp, args.floor_repeats)
            figures["synthetic"]["directory"] = result
            add_rows(f"synthetic {'x'.join(map(str, shape))} (dir)", result)
            if not args.skip_tar:
                tar_path = write_ixi_tar(tmp / "IXI-T1.tar", files)  # same bytes as the directory's files
                result = bench_set(
                    "synthetic tar", folder, files, args.workers, tmp, args.floor_repeats, tar_path=tar_path
                )
                figures["synthetic"]["tar"] = result
                add_rows(f"synthetic {'x'.join(map(str, shape))} (tar)", result)

    print_table(
        [
            "source",
            "files",
            "MB (gz)",
            "workers",
            "ingest s",
            "gzip -dc s",
            "ratio",
            "ratio/par",
            "vol/s",
            f"<= {TARGET_RATIO:g}",
        ],
        rows,
        title="Ingestion vs decompression floor (ratio = ingest wall / gzip -dc wall; "
        "ratio/par = vs gzip -dc run on as many processes as workers)",
    )
    parts = [
        (label, figures[key] if key == "sample" else figures.get("synthetic", {}).get("directory"))
        for label, key in (("2 mm sample", "sample"), ("synthetic", "synthetic"))
        if key in figures
    ]
    parts = [(label, r["per_volume_breakdown_s"]) for label, r in parts if r and r.get("per_volume_breakdown_s")]
    if parts:
        keys = list(parts[0][1])
        print_table(
            ["set", *[f"{k} ms" for k in keys], "gunzip share of load_volume"],
            [[label, *[1000 * b[k] for k in keys], f"{b['gunzip'] / b['load_volume']:.0%}"] for label, b in parts],
            title="Per-volume cost of ingest's parts, one process, median of up to 5 files "
            "(load_volume includes sha256 + gunzip; stats and encode follow it)",
        )
    publish(args, "ingest", figures)


if __name__ == "__main__":
    main()
