"""Where the raw IXI T1 files come from: a directory, an IXI tar archive, or the 2 mm sample.

A source resolves in this order: ``--source`` option > ``MRIRECON_SOURCE`` environment
variable > ``params.yaml: data.source`` (default ``"sample"``). :func:`iter_source_files`
then yields ``(name, bytes)`` one file at a time, so memory holds one compressed file.

The ``sample`` source is the 150-subject, 2 mm IXI T1 set resampled by the NiChart project
(CBICA, University of Pennsylvania; github.com/CBICA/NiChart_Project, commit 494c25e0).
File names, sizes and SHA-256 checksums are listed in ``ixi_t1_2mm_sample.csv`` (shipped
with this package; the data itself is downloaded, never stored in the repository).
"""

from __future__ import annotations

import csv
import hashlib
import os
import tarfile
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .volumes import is_ixi_t1_name

ENV_SOURCE = "MRIRECON_SOURCE"
#: Base URL for the sample files; ``{repo}``, ``{commit}`` and ``{path}`` are filled from the manifest.
ENV_SAMPLE_URL = "MRIRECON_SAMPLE_URL"
DEFAULT_SAMPLE_URL = "https://github.com/{repo}/raw/{commit}/{path}"
SAMPLE = "sample"


class SourceError(RuntimeError):
    """No usable data source; the message says how to set one."""


@dataclass(frozen=True)
class Source:
    """A resolved data source.

    Attributes:
        kind: ``"directory"``, ``"tar"`` or ``"sample"``.
        path: absolute path (for ``sample``, the local cache directory).
        origin: how it was chosen: ``"--source"``, ``"MRIRECON_SOURCE"`` or ``"params.yaml"``.
    """

    kind: str
    path: Path
    origin: str


HOW_TO_SET = (
    "set a data source in one of three ways: the --source option, the MRIRECON_SOURCE "
    "environment variable, or data.source in params.yaml (a directory of IXI *T1.nii.gz files, "
    "an IXI-T1.tar archive, or 'sample' to download the 2 mm IXI sample)"
)


def resolve_source(option: str | None, params_source: str | None, cache_dir: Path) -> Source:
    """Pick the data source by precedence and check it is reachable.

    Args:
        option: value of ``--source`` (or None).
        params_source: ``data.source`` from params.yaml (or None).
        cache_dir: where the ``sample`` files are cached (e.g. ``data/raw/ixi-t1-2mm``).

    Returns:
        the resolved :class:`Source` with an absolute path.

    Raises:
        SourceError: the chosen path does not exist or holds no IXI T1 files, naming the
            three ways to set a source.
    """
    for value, origin in ((option, "--source"), (os.environ.get(ENV_SOURCE), ENV_SOURCE), (params_source, "params.yaml")):
        if value:
            break
    else:
        value, origin = SAMPLE, "default"
    if value == SAMPLE:
        return Source("sample", Path(cache_dir).resolve(), origin)
    path = Path(value).expanduser().resolve()
    if path.is_dir():
        if not any(is_ixi_t1_name(p.name) for p in path.iterdir()):
            raise SourceError(f"source {path} (from {origin}) holds no IXI *T1.nii.gz files; {HOW_TO_SET}")
        return Source("directory", path, origin)
    if path.is_file() and tarfile.is_tarfile(path):
        return Source("tar", path, origin)
    if path.is_file():
        raise SourceError(f"source {path} (from {origin}) is a file but not a tar archive; {HOW_TO_SET}")
    raise SourceError(f"source {path} (from {origin}) does not exist; {HOW_TO_SET}")


def sample_manifest() -> list[dict[str, str]]:
    """Rows of the shipped sample manifest: file, bytes, sha256, repo, commit, path."""
    text = resources.files(__package__).joinpath("ixi_t1_2mm_sample.csv").read_text()
    return list(csv.DictReader(text.splitlines()))


def fetch_sample(cache_dir: Path, base_url: str | None = None, timeout_s: float = 60.0) -> list[Path]:
    """Download the 2 mm IXI sample into ``cache_dir`` (skipping files already verified).

    Every file is checked against the manifest's SHA-256 and written atomically.

    Args:
        cache_dir: destination directory.
        base_url: URL template with ``{repo}``, ``{commit}``, ``{path}``, ``{file}``
            (default: env ``MRIRECON_SAMPLE_URL`` or GitHub's raw URL at the pinned commit).
        timeout_s: per-request timeout in seconds.

    Returns:
        paths of the cached files.

    Raises:
        SourceError: a file cannot be downloaded or its checksum does not match.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    template = base_url or os.environ.get(ENV_SAMPLE_URL) or DEFAULT_SAMPLE_URL
    paths = []
    for row in sample_manifest():
        dest = cache_dir / row["file"]
        if dest.exists() and _sha256_file(dest) == row["sha256"]:
            paths.append(dest)
            continue
        url = template.format(**row)
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                raw = response.read()
        except OSError as exc:
            raise SourceError(f"cannot download {row['file']} from {url} ({exc}); {HOW_TO_SET}") from exc
        digest = hashlib.sha256(raw).hexdigest()
        if digest != row["sha256"]:
            raise SourceError(f"{row['file']} from {url}: sha256 {digest} does not match the manifest {row['sha256']}")
        _atomic_write_bytes(dest, raw)
        paths.append(dest)
    return paths


def iter_source_files(source: Source) -> Iterator[tuple[str, bytes]]:
    """Yield ``(file name, raw bytes)`` for every IXI T1 file of a source, sorted by name.

    A tar archive is streamed member by member (``tarfile`` mode ``r|*``), never extracted
    to disk. Files whose names are not IXI T1 names are skipped silently (other modalities).
    """
    if source.kind == "sample":
        fetch_sample(source.path)
    if source.kind in ("sample", "directory"):
        for path in sorted(source.path.iterdir()):
            if path.is_file() and is_ixi_t1_name(path.name):
                yield path.name, path.read_bytes()
        return
    with tarfile.open(source.path, mode="r|*") as archive:
        for member in archive:
            if member.isfile() and is_ixi_t1_name(member.name):
                handle = archive.extractfile(member)
                yield member.name.rsplit("/", 1)[-1], handle.read() if handle else b""


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write_bytes(dest: Path, raw: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
