"""Where the raw IXI T1 files come from: a directory, an IXI tar archive, or the 2 mm sample.

A source resolves in this order: ``--source`` option > ``MRIRECON_SOURCE`` environment
variable > ``params.yaml: data.source`` (default ``"sample"``). :func:`iter_source_items`
then yields the files one at a time, so memory holds one compressed file.

The ``sample`` source is the 150-subject, 2 mm IXI T1 set resampled by the NiChart project
(CBICA, University of Pennsylvania; github.com/CBICA/NiChart_Project, commit 494c25e0).
File names, sizes and SHA-256 checksums are listed in ``ixi_t1_2mm_sample.csv`` (shipped
with this package; the data itself is downloaded, never stored in the repository).
"""

from __future__ import annotations

import csv
import os
import tarfile
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mrirecon.data.storage import atomic_path, file_digest
from mrirecon.data.volumes import VolumeError, is_ixi_t1_name, not_t1_error, one_line, sha256_bytes

ENV_SOURCE = "MRIRECON_SOURCE"
#: Base URL for the sample files; ``{repo}``, ``{commit}`` and ``{path}`` are filled from the manifest.
ENV_SAMPLE_URL = "MRIRECON_SAMPLE_URL"
DEFAULT_SAMPLE_URL = "https://github.com/{repo}/raw/{commit}/{path}"
SAMPLE = "sample"

#: Largest input file read into memory (bytes); bigger files are rejected unread.
MAX_FILE_BYTES = 4 * 1024**3

#: Redirects to another host are refused except these (GitHub serves ``/raw/`` URLs
#: from its content hosts); the sha256 of every file is checked in any case.
TRUSTED_REDIRECTS: dict[str, frozenset[str]] = {
    "github.com": frozenset(
        {"raw.githubusercontent.com", "media.githubusercontent.com", "objects.githubusercontent.com"}
    ),
}


class SourceError(RuntimeError):
    """No usable data source; the message says how to set one."""


class RedirectRefused(SourceError):
    """A download was redirected from https to plain http, or to another host."""


@dataclass(frozen=True)
class SourceItem:
    """One candidate input file of a source.

    Attributes:
        name: base name (directory entry or tar member without its folders).
        raw: the file's bytes, or None when it could not or must not be read.
        error: why the file is rejected before parsing (None when ``raw`` is set).
    """

    name: str
    raw: bytes | None = None
    error: VolumeError | None = None


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
    candidates = ((option, "--source"), (os.environ.get(ENV_SOURCE), ENV_SOURCE), (params_source, "params.yaml"))
    value, origin = next(((v, o) for v, o in candidates if v), (SAMPLE, "default"))
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


def check_redirect(old_url: str, new_url: str) -> None:
    """Refuse a redirect that downgrades https to http or leaves the host.

    Allowed: the same host name and port (an http -> https upgrade on the same host
    name, default ports, is allowed too), or a host listed for the old host in
    :data:`TRUSTED_REDIRECTS`. Host names are compared literally (``127.0.0.1`` and
    ``localhost`` are different hosts).

    Args:
        old_url: URL of the request that was redirected.
        new_url: absolute URL of the redirect target.

    Raises:
        RedirectRefused: naming both URLs and the reason.
    """
    old, new = urllib.parse.urlsplit(old_url), urllib.parse.urlsplit(new_url)
    if old.scheme == "https" and new.scheme != "https":
        raise RedirectRefused(
            f"refusing redirect from {old_url} to {new_url}: https downgraded to {new.scheme or 'none'}"
        )
    if new.scheme not in ("http", "https"):
        raise RedirectRefused(f"refusing redirect from {old_url} to {new_url}: scheme {new.scheme!r} not allowed")
    defaults = {"http": 80, "https": 443}
    old_host, new_host = (old.hostname or "").lower(), (new.hostname or "").lower()
    old_port, new_port = old.port or defaults[old.scheme], new.port or defaults[new.scheme]
    if old_host == new_host and (
        old_port == new_port
        or (old.port is None and new.port is None and (old.scheme, new.scheme) == ("http", "https"))
    ):
        return
    if new.scheme == "https" and new_host in TRUSTED_REDIRECTS.get(old_host, frozenset()):
        return
    raise RedirectRefused(
        f"refusing redirect from {old_url} to {new_url}: "
        f"another host ({new_host}:{new_port} instead of {old_host}:{old_port})"
    )


class _CheckedRedirectHandler(urllib.request.HTTPRedirectHandler):
    """urllib redirect handler that applies :func:`check_redirect` to every hop."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102 - urllib hook
        check_redirect(req.full_url, newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _download(url: str, timeout_s: float) -> bytes:
    """GET ``url`` following only redirects allowed by :func:`check_redirect`.

    Raises:
        RedirectRefused: on a refused redirect.
        OSError: (``urllib.error.URLError``/``HTTPError``) on network or HTTP errors.
    """
    opener = urllib.request.build_opener(_CheckedRedirectHandler())
    with opener.open(url, timeout=timeout_s) as response:
        return response.read()


def fetch_sample(cache_dir: Path, base_url: str | None = None, timeout_s: float = 60.0) -> list[Path]:
    """Download the 2 mm IXI sample into ``cache_dir`` (skipping files already verified).

    Every file is checked against the manifest's SHA-256 before it is written (atomically)
    or used. Redirects are followed only to the same host (or GitHub's content hosts, see
    :data:`TRUSTED_REDIRECTS`) and never from https to plain http (:func:`check_redirect`).

    Args:
        cache_dir: destination directory.
        base_url: URL template with ``{repo}``, ``{commit}``, ``{path}``, ``{file}``
            (default: env ``MRIRECON_SAMPLE_URL`` or GitHub's raw URL at the pinned commit).
        timeout_s: per-request timeout in seconds.

    Returns:
        paths of the cached files.

    Raises:
        SourceError: a file cannot be downloaded, a redirect was refused
            (:class:`RedirectRefused`), or its checksum does not match.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    template = base_url or os.environ.get(ENV_SAMPLE_URL) or DEFAULT_SAMPLE_URL
    paths = []
    for row in sample_manifest():
        dest = cache_dir / row["file"]
        if dest.exists() and file_digest(dest, "sha256") == row["sha256"]:
            paths.append(dest)
            continue
        url = template.format(**row)
        try:
            raw = _download(url, timeout_s)
        except RedirectRefused as exc:
            raise RedirectRefused(f"cannot download {row['file']}: {exc}") from exc
        except OSError as exc:
            raise SourceError(f"cannot download {row['file']} from {url} ({exc}); {HOW_TO_SET}") from exc
        digest = sha256_bytes(raw)
        if digest != row["sha256"]:
            raise SourceError(f"{row['file']} from {url}: sha256 {digest} does not match the manifest {row['sha256']}")
        with atomic_path(dest) as tmp:
            tmp.write_bytes(raw)
        paths.append(dest)
    return paths


def iter_source_items(source: Source) -> Iterator[SourceItem]:
    """Yield every candidate input file of a source, read or with the reason it is rejected.

    Directory (and ``sample``) sources are listed in name order; a tar archive is streamed
    member by member (``tarfile`` mode ``r|*``) and **never extracted**: members are read
    into memory and identified by their base name, so a member named with an absolute path
    or ``..`` (``/etc/IXI..``, ``../../IXI..``) is read like any other and nothing is ever
    written outside (or inside) the project.

    What is yielded:

    * an IXI T1 name that is a readable regular file (or a symbolic link to one):
      ``SourceItem(name, raw)``;
    * an IXI name of another modality (``-T2``, ``-PD``, ``-MRA``, ``-DTI-00``): rejected,
      ``"<name>: not a T1 file (modality T2)"``; other names (README, spreadsheets) are
      skipped silently;
    * an IXI T1 name that is a directory, a dangling symbolic link, a tar link member or
      another non-regular file, larger than :data:`MAX_FILE_BYTES`, or unreadable: rejected
      with the reason (never read; a FIFO would block);
    * a truncated or damaged tar: the members read before the damage are yielded as usual,
      then one rejected item named after the archive says where reading stopped.

    Args:
        source: a resolved :class:`Source`.

    Yields:
        :class:`SourceItem` objects; only one file's bytes are held at a time.

    Raises:
        SourceError: if the ``sample`` download fails (see :func:`fetch_sample`).
    """
    if source.kind == "sample":
        fetch_sample(source.path)
    if source.kind in ("sample", "directory"):
        for path in sorted(source.path.iterdir(), key=lambda p: p.name):
            item = _directory_item(path)
            if item is not None:
                yield item
        return
    yield from _tar_items(source.path)


def _rejected(name: str, reason: str, kind: str) -> SourceItem:
    """A rejected item whose error reads ``"<name>: <reason>"``."""
    return SourceItem(name, error=VolumeError(f"{name}: {reason}", kind))


def _too_large(name: str, size: int) -> SourceItem:
    return _rejected(
        name, f"file is {size / 1e9:.1f} GB, over the {MAX_FILE_BYTES / 1e9:.1f} GB limit", "file-too-large"
    )


def _name_rejection(name: str) -> SourceItem | None:
    """For a name that is not an IXI T1 name: a rejection if it is another IXI modality, else None."""
    error = not_t1_error(name)
    return SourceItem(name, error=error) if error else None


def _directory_item(path: Path) -> SourceItem | None:
    """The :class:`SourceItem` of one directory entry, or None to skip an unrelated file."""
    name = path.name
    if not is_ixi_t1_name(name):
        return _name_rejection(name)
    if path.is_symlink() and not path.exists():
        target = os.readlink(path)
        return _rejected(name, f"dangling symbolic link (target {target} does not exist)", "not-a-file")
    if path.is_dir():
        return _rejected(name, "is a directory, not a volume file", "not-a-file")
    if not path.is_file():
        return _rejected(name, "not a regular file (device, FIFO or socket)", "not-a-file")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return _too_large(name, size)
        return SourceItem(name, raw=path.read_bytes())
    except OSError as exc:
        return _rejected(name, f"cannot read file ({one_line(exc)})", "unreadable-file")


_TAR_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error)


def _tar_items(archive_path: Path) -> Iterator[SourceItem]:
    """Stream a tar archive's members as :class:`SourceItem` (see :func:`iter_source_items`)."""
    read = 0
    current = None
    try:
        with tarfile.open(archive_path, mode="r|*") as archive:
            for member in archive:
                name = member.name.rstrip("/").rsplit("/", 1)[-1]
                if not is_ixi_t1_name(name):
                    rejection = _name_rejection(name)
                    if rejection is not None:
                        yield rejection
                    continue
                if member.isdir():
                    yield _rejected(name, f"tar member {member.name} is a directory, not a volume file", "not-a-file")
                elif member.issym() or member.islnk():
                    yield _rejected(
                        name,
                        f"tar member {member.name} is a link (to {member.linkname}), not a regular file",
                        "not-a-file",
                    )
                elif not member.isfile():
                    yield _rejected(name, f"tar member {member.name} is not a regular file", "not-a-file")
                elif member.size > MAX_FILE_BYTES:
                    yield _too_large(name, member.size)
                else:
                    current = member.name
                    handle = archive.extractfile(member)
                    raw = handle.read() if handle else b""
                    current = None
                    read += 1
                    yield SourceItem(name, raw=raw)
    except _TAR_ERRORS as exc:
        where = f" while reading member {current}" if current else ""
        yield _rejected(
            archive_path.name,
            f"tar archive truncated or damaged{where} after {read} volume file(s) read ({one_line(exc)}); "
            "the files read before are kept, the rest of the archive is missing",
            "truncated-archive",
        )
