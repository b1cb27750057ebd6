"""Whole-pipeline wall times: ``mrirecon run`` (quick profile), a no-op re-run, a no-op ``dvc repro``,
and optionally (``--default``) ``mrirecon run`` with the default profile.

What is measured
    In a temporary copy of the project (``benchmarks/_common.py: make_project_copy``: the git-visible
    files, a fresh git repo, no ``dvc.lock``, so nothing is cached; environment from
    ``project_env``: the project's venv first on PATH, ``MRIRECON_SOURCE`` set, no Prefect or
    MLflow server from the outside):

    1. ``mrirecon run`` with ``params-quick.yaml`` as ``params.yaml`` (40 subjects, 2 grid points,
       2 epochs): every stage from scratch, including the ephemeral Prefect API start;
    2. ``mrirecon run`` again: nothing changed, every stage must be skipped (counts the
       "stage ... is up to date" lines);
    3. ``dvc repro``: must be a no-op too (counts "Running stage" lines, expected 0);
    4. with ``--default``: a second fresh copy with the default ``params.yaml`` (150 subjects,
       6 grid points x 20 epochs), ``mrirecon run`` from scratch (~13 min on 2 cores).

    Each command's wall time (subprocess start to exit) and the peak summed RSS of its process
    tree (sampled every 50 ms; an upper bound, shared pages count once per process).

Needs ``MRIRECON_SOURCE`` (the real IXI files). Not part of ``make bench``: ``make bench-pipeline``.
Output: a table on stdout and the key ``"pipeline"`` of ``reports/bench.json`` (merged).

Usage:
    MRIRECON_SOURCE=/abs/path/ixi-t1-2mm .venv/bin/python benchmarks/pipeline_bench.py [--default] [--keep DIR]
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    RssSampler,
    add_output_options,
    doc_parser,
    environment,
    make_project_copy,
    print_table,
    project_env,
    publish,
    require_source,
)


def timed(cmd: list[str], cwd: Path, env: dict, timeout: float) -> dict:
    """Run ``cmd``; wall time, peak tree RSS, exit code and the output's tail."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with RssSampler(proc.pid) as sampler:
        try:
            output, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
            output += f"\n[killed after {timeout:.0f} s]"
    wall = time.perf_counter() - start
    return {
        "command": " ".join(cmd),
        "wall_s": wall,
        "peak_tree_rss_mb": sampler.peak_mb,
        "returncode": proc.returncode,
        "stages_up_to_date": len(re.findall(r"stage \w+ is up to date", output)),
        "dvc_stages_run": sorted(set(re.findall(r"Running stage '(\w+)'", output))),
        "output_tail": output[-2000:],
    }


def main() -> None:
    parser = doc_parser(__doc__)
    parser.add_argument(
        "--default",
        action="store_true",
        help="also time `mrirecon run` with the default profile in a fresh copy (~13 min here)",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="make the project copies under this folder and keep them (default: temp, removed)",
    )
    parser.add_argument(
        "--timeout", type=float, default=3600, help="seconds per command before it is killed (default 3600)"
    )
    add_output_options(parser)
    args = parser.parse_args()

    source = require_source()
    env = project_env(source)
    base = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="pipeline-bench-"))
    if args.keep:
        base.mkdir(parents=True, exist_ok=True)
    steps: list[tuple[str, dict]] = []
    failed = False
    try:
        quick = make_project_copy(base / "quick")
        plan = [
            ("mrirecon run (quick profile, from scratch)", ["mrirecon", "run"], quick),
            ("mrirecon run again (no-op)", ["mrirecon", "run"], quick),
            ("dvc repro (no-op)", ["dvc", "repro"], quick),
        ]
        if args.default:
            plan.append(("mrirecon run (default profile, from scratch)", ["mrirecon", "run"], None))
        for label, cmd, cwd in plan:
            if cwd is None:
                cwd = make_project_copy(base / "default", profile="params.yaml")
            print(f"  {label} in {cwd} ...", end=" ", flush=True)
            result = timed(cmd, cwd, env, args.timeout)
            print(f"{result['wall_s']:.1f} s (exit {result['returncode']})", flush=True)
            steps.append((label, result))
            if result["returncode"]:
                print(result["output_tail"], file=sys.stderr)
                failed = True
                break
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)

    print_table(
        ["step", "wall s", "min", "peak tree RSS MB", "exit", "stages skipped", "dvc stages run"],
        [
            [
                label,
                r["wall_s"],
                r["wall_s"] / 60,
                r["peak_tree_rss_mb"],
                r["returncode"],
                r["stages_up_to_date"],
                ",".join(r["dvc_stages_run"]) or "none",
            ]
            for label, r in steps
        ],
        title=f"Whole pipeline in a temp copy of the project (source {source})",
    )
    noop = [r for label, r in steps if "no-op" in label]
    # the no-op `mrirecon run` should log "stage X is up to date" for all 5 stages (0: its log lines were not seen)
    if any(r["dvc_stages_run"] for r in noop) or any(0 < r["stages_up_to_date"] < 5 for r in noop[:1]):
        print("warning: a no-op step ran stages (see the columns stages skipped / dvc stages run)")
    figures = {
        "environment": environment(),
        "source": str(source),
        "steps": [{"step": label, **{k: v for k, v in r.items() if k != "output_tail"}} for label, r in steps],
        "complete": not failed,
    }
    publish(args, "pipeline", figures)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
