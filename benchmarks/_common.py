"""Helpers shared by the benchmark scripts (not a benchmark itself).

* :func:`merge_bench` merges one benchmark's figures into ``reports/bench.json`` under its own
  top-level key, under an exclusive ``flock`` and with an atomic rename, so benchmarks never
  clobber each other's keys and a crash never leaves a half-written file.
* :func:`synthetic_head` / :func:`write_synthetic_set` / :func:`write_ixi_tar` make
  full-resolution-sized IXI-like T1 files (head-shaped, smooth texture, mild noise: they
  compress roughly like MRI, unlike pure noise), named like the official IXI files.
* :class:`RssSampler` samples the summed resident memory of a process tree.
* :func:`print_table` prints an aligned text table; :func:`doc_parser`,
  :func:`add_synthetic_options` and :func:`add_output_options` build the scripts' command lines,
  :func:`publish` merges the figures as ``--bench-json`` / ``--no-write`` say.
* :func:`make_project_copy` / :func:`project_env` make a throw-away copy of the project (a fresh
  git repository) and the environment to run ``mrirecon`` / ``dvc`` in it.

The scripts run with the project's venv (``.venv/bin/python``); only ``torch_unet.py``, which
runs in ``.venv-bench``, does not import this module.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import gzip
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCH_JSON = ROOT / "reports" / "bench.json"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HOW_TO_SET_SOURCE = (
    "set MRIRECON_SOURCE to the absolute path of the IXI T1 files, e.g. "
    "MRIRECON_SOURCE=/work/shared/data/ixi-t1-2mm (the 150-volume 2 mm sample)"
)

#: Field of view (mm) of the synthetic volumes along the on-disk axes (P, S, R), as IXI T1:
#: 256 x 256 x 150 voxels of 0.9375 x 0.9375 x 1.2 mm.
SYNTHETIC_FOV_MM = (240.0, 240.0, 180.0)


# ------------------------------------------------------------------------------------------
# environment, tables, reports/bench.json
# ------------------------------------------------------------------------------------------


def require_source() -> Path:
    """The real IXI source from ``MRIRECON_SOURCE``; exits with a clear message if unset or missing."""
    value = os.environ.get("MRIRECON_SOURCE")
    if not value:
        sys.exit(f"MRIRECON_SOURCE is not set: {HOW_TO_SET_SOURCE}")
    path = Path(value).expanduser().resolve()
    if not path.exists():
        sys.exit(f"MRIRECON_SOURCE={value} does not exist: {HOW_TO_SET_SOURCE}")
    return path


def environment() -> dict:
    """Where and when the figures were measured."""
    threads = {
        k: os.environ[k]
        for k in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")
        if k in os.environ
    }
    return {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "load_avg_1min_at_start": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "thread_env": threads,
    }


def doc_parser(doc: str) -> argparse.ArgumentParser:
    """Argument parser of a benchmark script: its docstring's first paragraph as the description,
    the rest as the epilog (shown as written)."""
    summary, _, rest = doc.partition("\n\n")
    return argparse.ArgumentParser(
        description=summary, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=rest
    )


def add_synthetic_options(parser: argparse.ArgumentParser) -> None:
    """``--size X Y Z`` and ``--distinct K``: the shape and the variety of the synthetic volumes."""
    parser.add_argument(
        "--size",
        type=int,
        nargs=3,
        default=[256, 256, 150],
        metavar=("X", "Y", "Z"),
        help="on-disk shape of the synthetic volumes (default 256 256 150, IXI's)",
    )
    parser.add_argument(
        "--distinct",
        type=int,
        default=4,
        help="distinct synthetic volumes generated; the N files cycle through them (default 4)",
    )


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """``--bench-json PATH`` and ``--no-write``: where :func:`publish` merges the figures, or not at all."""
    parser.add_argument(
        "--bench-json", type=Path, default=BENCH_JSON, help="where figures are merged (default reports/bench.json)"
    )
    parser.add_argument(
        "--no-write", action="store_true", help="only print; do not merge the figures into --bench-json"
    )


def publish(args: argparse.Namespace, key: str, figures: dict) -> None:
    """Merge ``figures`` under ``key`` into ``args.bench_json`` (:func:`merge_bench`) unless ``--no-write``."""
    if not args.no_write:
        print(f"\nwritten: {merge_bench(key, figures, args.bench_json)} [{key}]")


def print_table(headers: list[str], rows: list[list], title: str | None = None) -> None:
    """Print rows as an aligned table (floats with 3 significant decimals)."""

    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}" if abs(value) < 100 else f"{value:.1f}"
        return "-" if value is None else str(value)

    text = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text)) if text else len(h) for i, h in enumerate(headers)]
    if title:
        print(f"\n{title}")
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths)))
    print("  ".join("-" * w for w in widths))
    for row in text:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths)))
    sys.stdout.flush()


def merge_bench(key: str, figures: dict, path: Path = BENCH_JSON) -> Path:
    """Set ``figures`` under ``key`` in ``path`` (other keys kept), atomically and under a lock.

    An unreadable existing file is kept aside as ``bench.json.corrupt`` rather than overwritten
    silently.
    """
    from mrirecon.data.storage import atomic_path  # temp file + fsync + rename

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = os.open(path.parent, os.O_RDONLY)  # flock on the folder itself: no lock file left behind
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data: dict = {}
        if path.exists():
            try:
                data = json.loads(path.read_text() or "{}")
                if not isinstance(data, dict):
                    raise ValueError("top level is not an object")
            except ValueError as exc:
                aside = path.with_name(path.name + ".corrupt")
                os.replace(path, aside)
                print(f"warning: {path} was not valid JSON ({exc}); moved to {aside}", file=sys.stderr)
                data = {}
        data[key] = figures
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(data, indent=2) + "\n")
    finally:
        os.close(lock)  # releases the flock
    return path


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares ``y = intercept + slope * x``; returns ``(intercept, slope)``."""
    if len(xs) < 2:
        return 0.0, (ys[0] / xs[0] if xs and xs[0] else 0.0)
    slope, intercept = np.polyfit(np.asarray(xs, float), np.asarray(ys, float), 1)
    return float(intercept), float(slope)


# ------------------------------------------------------------------------------------------
# throw-away project copies
# ------------------------------------------------------------------------------------------

_GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
}


def make_project_copy(dest: Path, profile: str = "params-quick.yaml") -> Path:
    """Copy the project's git-visible files (tracked and untracked, not ignored) to ``dest`` as a
    fresh one-commit git repository, with ``profile`` as its ``params.yaml`` and no ``dvc.lock``."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in (f for f in listed if f and (ROOT / f).is_file()):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    shutil.copy2(ROOT / profile, dest / "params.yaml")
    (dest / "dvc.lock").unlink(missing_ok=True)
    env = {**os.environ, **_GIT_IDENTITY}
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "benchmark copy"]):
        subprocess.run(cmd, cwd=dest, check=True, env=env)
    return dest


def project_env(source: Path) -> dict[str, str]:
    """Environment for ``mrirecon`` / ``dvc`` in a project copy: this venv first on ``PATH``, the
    IXI files from ``source``, and no project, Prefect or MLflow setting inherited from the caller."""
    unset = ("MRIRECON_PROJECT", "PREFECT_HOME", "PREFECT_API_URL", "MLFLOW_TRACKING_URI")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(
        _GIT_IDENTITY,
        MRIRECON_SOURCE=str(source),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return env


# ------------------------------------------------------------------------------------------
# synthetic IXI-like volumes
# ------------------------------------------------------------------------------------------


def _smooth_field(shape: tuple[int, ...], cells: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth random field in [-1, 1]-ish: noise on a coarse grid, trilinearly upsampled."""
    from scipy.ndimage import zoom

    coarse_shape = tuple(max(2, int(round(s / cells))) for s in shape)
    coarse = rng.standard_normal(coarse_shape).astype(np.float32)
    field = zoom(coarse, [s / c for s, c in zip(shape, coarse_shape)], order=1, mode="nearest", grid_mode=True)
    return field[tuple(slice(0, s) for s in shape)]


def synthetic_head(shape: tuple[int, int, int] = (256, 256, 150), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An IXI-T1-like int16 volume and its affine, in IXI's on-disk orientation (P, S, R).

    Content: a scalp/skull shell, a brain ellipsoid with smooth grey/white texture, dark
    ventricles and a neck below, over a Rician-like noise background; intensities 0..~1000.
    The field of view is :data:`SYNTHETIC_FOV_MM` whatever ``shape``, so slice selection finds
    the head as on real data (``256 x 256 x 150`` gives IXI's 0.9375 x 0.9375 x 1.2 mm voxels).

    Returns:
        ``(int16 array of shape, 4x4 affine with axis codes P, S, R)``.
    """
    rng = np.random.default_rng(seed)
    voxel = [f / n for f, n in zip(SYNTHETIC_FOV_MM, shape)]
    # physical coordinates (mm, centred): p = posterior, s = superior, r = right
    p = ((np.arange(shape[0]) + 0.5) * voxel[0] - SYNTHETIC_FOV_MM[0] / 2).astype(np.float32)[:, None, None]
    s = ((np.arange(shape[1]) + 0.5) * voxel[1] - SYNTHETIC_FOV_MM[1] / 2).astype(np.float32)[None, :, None]
    r = ((np.arange(shape[2]) + 0.5) * voxel[2] - SYNTHETIC_FOV_MM[2] / 2).astype(np.float32)[None, None, :]
    jitter = 1.0 + 0.04 * rng.standard_normal(3)
    ap, si, lr = 92.0 * jitter[0], 100.0 * jitter[1], 72.0 * jitter[2]
    rho = np.sqrt((p / ap) ** 2 + ((s - 12.0) / si) ** 2 + (r / lr) ** 2)  # 1 at the scalp surface
    neck = (s < -40.0) & ((p - 10.0) ** 2 / 48.0**2 + r**2 / 45.0**2 <= 1.0)
    brain = rho < 0.86
    texture = _smooth_field(shape, 12, rng) + 0.5 * _smooth_field(shape, 4, rng)
    image = np.zeros(shape, np.float32)
    image[neck] = 420.0
    image[(rho >= 0.86) & (rho < 0.93)] = 120.0  # skull: dark in T1
    image[(rho >= 0.93) & (rho < 1.0)] = 700.0  # scalp fat: bright in T1
    image[brain] = (560.0 + 130.0 * np.tanh(1.5 * texture))[brain]  # grey/white matter
    ventricles = (p / 20.0) ** 2 + ((s - 20.0) / 14.0) ** 2 + (np.abs(r) - 8.0) ** 2 / 6.0**2 < 1.0
    image[ventricles & brain] = 150.0
    image += _smooth_field(shape, 24, rng) * 25.0 * (image > 0)  # bias field on the head only
    noise = 6.0 * rng.standard_normal((2, *shape), dtype=np.float32)
    image = np.hypot(image + noise[0], noise[1])  # Rician: magnitude of complex noise
    affine = np.array(
        [
            [0.0, 0.0, voxel[2], -SYNTHETIC_FOV_MM[2] / 2],  # x (right) <- axis 2
            [-voxel[0], 0.0, 0.0, SYNTHETIC_FOV_MM[0] / 2],  # y (anterior) <- -axis 0 (posterior)
            [0.0, voxel[1], 0.0, -SYNTHETIC_FOV_MM[1] / 2],  # z (superior) <- axis 1
            [0.0, 0.0, 0.0, 1.0],
        ]
    )
    return np.clip(np.rint(image), 0, 32767).astype(np.int16), affine


def nifti_gz_bytes(data: np.ndarray, affine: np.ndarray, level: int = 6) -> bytes:
    """NIfTI-1 bytes of ``data`` with ``affine``, gzip-compressed at ``level`` (gzip's default 6)."""
    import nibabel as nib

    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    buf = io.BytesIO()
    img.to_file_map(nib.Nifti1Image.make_file_map({"image": buf, "header": buf}))
    return gzip.compress(buf.getvalue(), compresslevel=level, mtime=0)


def ixi_name(index: int, official: bool = True) -> str:
    """IXI-style T1 file name of synthetic subject ``index`` (``IXI<nnn>-Guys-<nnnn>-T1.nii.gz``)."""
    if not 0 <= index < 1000:
        raise ValueError("synthetic subjects are numbered 0..999 (IXI uses 3 digits)")
    return f"IXI{index:03d}-Guys-{1000 + index:04d}{'-' if official else '_'}T1.nii.gz"


def make_distinct_volumes(
    shape: tuple[int, int, int], distinct: int, level: int = 6, progress: bool = True
) -> list[bytes]:
    """``distinct`` different synthetic volumes as ``.nii.gz`` bytes (seeds 0..distinct-1)."""
    out = []
    for seed in range(distinct):
        start = time.perf_counter()
        data, affine = synthetic_head(shape, seed)
        out.append(nifti_gz_bytes(data, affine, level))
        if progress:
            print(
                f"  generated synthetic volume {seed + 1}/{distinct} {shape} int16: "
                f"{len(out[-1]) / 1e6:.1f} MB .nii.gz (raw {data.nbytes / 1e6:.1f} MB) "
                f"in {time.perf_counter() - start:.1f} s",
                flush=True,
            )
    return out


def write_synthetic_set(folder: Path, n: int, volumes: list[bytes], link: bool = False) -> list[Path]:
    """Write ``n`` files named :func:`ixi_name` into ``folder``, cycling through ``volumes``.

    With ``link`` every file beyond the distinct ones is a hard link to one of them (no extra
    disk); otherwise each file is a real copy (so reading them reads ``n`` files' bytes).
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for i in range(n):
        path = folder / ixi_name(i)
        if link and i >= len(volumes):
            os.link(paths[i % len(volumes)], path)
        else:
            path.write_bytes(volumes[i % len(volumes)])
        paths.append(path)
    return paths


def link_subset(paths: list[Path], folder: Path) -> list[Path]:
    """Hard-link ``paths`` into ``folder`` under the same names."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for path in paths:
        os.link(path, folder / path.name)
        out.append(folder / path.name)
    return out


def write_ixi_tar(tar_path: Path, paths: list[Path]) -> Path:
    """An IXI-style tar (members ``IXI-T1/<name>``, regular files, uncompressed tar)."""
    with tarfile.open(tar_path, "w") as archive:
        for path in paths:
            info = tarfile.TarInfo(f"IXI-T1/{path.name}")
            info.size = path.stat().st_size
            info.mtime = int(time.time())
            info.mode = 0o644
            with open(path, "rb") as handle:  # addfile, not add: hard links must become regular members
                archive.addfile(info, handle)
    return tar_path


# ------------------------------------------------------------------------------------------
# memory sampling
# ------------------------------------------------------------------------------------------


class RssSampler:
    """Peak of the summed RSS of a process and all its descendants, sampled every ``interval`` s.

    The sum counts pages shared between processes (libraries, copy-on-write) once per
    process, so it is an upper bound on the memory the tree really uses.
    """

    def __init__(self, pid: int, interval: float = 0.05):
        self.pid, self.interval = pid, interval
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop.is_set():
            total = 0
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            for proc in procs:
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    total += proc.memory_info().rss
            self.peak_bytes = max(self.peak_bytes, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / 2**20
