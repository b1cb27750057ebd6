"""Data sources: precedence, clear errors, tar streaming, and the sample download (local HTTP)."""

import csv
import functools
import gzip
import hashlib
import http.server
import io
import os
import tarfile
import threading
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from helpers import to_nifti_bytes

from mrirecon.data import sources
from mrirecon.data.sources import (
    RedirectRefused,
    Source,
    SourceError,
    check_redirect,
    fetch_sample,
    iter_source_items,
    resolve_source,
)
from mrirecon.data.storage import decode_array, parquet_metadata
from mrirecon.stages.ingest import NoUsableVolumes, StrictRejection, format_rejections, ingest


def readable_names(source: Source) -> list[str]:
    """Names of the source's items that were read (the rejected ones left out), in source order."""
    return [item.name for item in iter_source_items(source) if item.raw is not None]


def write_synthetic_dir(folder: Path, n: int = 3) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        name = f"IXI{100 + i:03d}-Guys-{i:04d}-T1.nii.gz"
        data = np.zeros((12, 12, 10), np.float32)
        data[3:9, 3:9, 2:8] = 10 + i
        (folder / name).write_bytes(to_nifti_bytes(data))
        names.append(name)
    (folder / "IXI100-Guys-0000-T2.nii.gz").write_bytes(b"other modality")  # never read: rejected as not T1
    return names


def test_precedence_option_env_params(tmp_path, monkeypatch):
    a, b, c = (tmp_path / n for n in "abc")
    for folder in (a, b, c):
        write_synthetic_dir(folder, 1)
    monkeypatch.setenv("MRIRECON_SOURCE", str(b))
    assert resolve_source(str(a), str(c), tmp_path).path == a
    assert resolve_source(None, str(c), tmp_path).origin == "MRIRECON_SOURCE"
    monkeypatch.delenv("MRIRECON_SOURCE")
    assert resolve_source(None, str(c), tmp_path).path == c
    sample = resolve_source(None, "sample", tmp_path / "cache")
    assert sample.kind == "sample" and sample.path.is_absolute()


def test_relative_source_is_made_absolute(tmp_path, monkeypatch):
    write_synthetic_dir(tmp_path / "rel", 1)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MRIRECON_SOURCE", raising=False)
    assert resolve_source("rel", None, tmp_path).path == tmp_path / "rel"


def test_missing_source_names_all_three_ways(tmp_path, monkeypatch):
    monkeypatch.delenv("MRIRECON_SOURCE", raising=False)
    with pytest.raises(SourceError) as info:
        resolve_source(str(tmp_path / "nowhere"), None, tmp_path)
    message = str(info.value)
    assert "does not exist" in message
    assert "--source" in message and "MRIRECON_SOURCE" in message and "params.yaml" in message


def test_tar_is_streamed_and_ingested(tmp_path):
    names = write_synthetic_dir(tmp_path / "src")
    tar_path = tmp_path / "IXI-T1.tar"
    with tarfile.open(tar_path, "w") as archive:
        for name in names:
            archive.add(tmp_path / "src" / name, arcname=name)
        junk = b"not a nifti"
        info = tarfile.TarInfo("IXI999-IOP-0999-T1.nii.gz")
        info.size = len(junk)
        archive.addfile(info, io.BytesIO(junk))
    source = resolve_source(str(tar_path), None, tmp_path)
    assert source.kind == "tar"
    assert readable_names(source) == [*names, "IXI999-IOP-0999-T1.nii.gz"]
    summary = ingest(source, tmp_path / "v.parquet", tmp_path / "rejected.csv")
    assert summary.accepted == ["IXI100-Guys-0000", "IXI101-Guys-0001", "IXI102-Guys-0002"]
    assert summary.rejected[0][0] == "IXI999-IOP-0999-T1.nii.gz"
    assert "IXI999-IOP-0999-T1.nii.gz" in (tmp_path / "rejected.csv").read_text()
    table = pq.read_table(tmp_path / "v.parquet")
    assert table.num_rows == 3
    row = table.slice(1, 1).to_pylist()[0]
    assert decode_array(row["data"], row["shape"]).max() == pytest.approx(11.0)
    assert parquet_metadata(tmp_path / "v.parquet")["mrirecon.source"].count(str(tar_path)) == 1


def test_no_usable_volume_raises_and_writes_nothing(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "IXI001-HH-0001-T1.nii.gz").write_bytes(b"")
    with pytest.raises(NoUsableVolumes, match="no usable"):
        ingest(resolve_source(str(folder), None, tmp_path), tmp_path / "v.parquet", tmp_path / "r.csv")
    assert not (tmp_path / "v.parquet").exists()


@pytest.fixture
def http_server(real_source):
    """Serve the real IXI files on 127.0.0.1 (stands in for the public repository)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(real_source))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.e2e
def test_sample_download_verifies_sha256_and_caches(http_server, tmp_path, real_source):
    cache = tmp_path / "raw"
    paths = fetch_sample(cache, base_url=http_server + "/{file}")
    assert len(paths) == 150
    assert paths[0].read_bytes() == (real_source / paths[0].name).read_bytes()
    # a corrupted cached file is fetched again; a server with wrong content is refused
    paths[0].write_bytes(b"corrupt")
    fetch_sample(cache, base_url=http_server + "/{file}")
    assert paths[0].read_bytes() == (real_source / paths[0].name).read_bytes()
    paths[1].unlink()
    with pytest.raises(SourceError, match="does not match"):
        fetch_sample(cache, base_url=http_server + "/" + paths[2].name + "?{file}")


# --- bad inputs in a directory: every one rejected with a one-line reason, the good ones kept ---


def _volume_bytes(value: float = 10.0) -> bytes:
    data = np.zeros((12, 12, 10), np.float32)
    data[3:9, 3:9, 2:8] = value
    return to_nifti_bytes(data)


def _read_rejected(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_bad_directory_entries_are_rejected_with_reasons(tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "IXI100-Guys-0000-T1.nii.gz").write_bytes(_volume_bytes(10))
    (folder / "IXI100-Guys-0000_T1.nii.gz").write_bytes(_volume_bytes(11))  # same subject, sorts after '-T1'
    (folder / "IXI100-Guys-0000-T2.nii.gz").write_bytes(b"a T2 volume")
    (folder / "IXI100-Guys-0000-PD.nii.gz").write_bytes(b"a PD volume")
    (folder / "IXI100-Guys-0000-MRA.nii.gz").write_bytes(b"an MRA volume")
    (folder / "README.txt").write_text("junk names are skipped")
    (folder / "IXI101-Guys-0001-T1.nii.gz").write_bytes(b"")
    (folder / "IXI102-Guys-0002-T1.nii.gz").symlink_to(folder / "missing.nii.gz")
    (folder / "IXI103-Guys-0003-T1.nii.gz").mkdir()
    os.mkfifo(folder / "IXI104-Guys-0004-T1.nii.gz")  # reading it would block forever
    (folder / "IXI105-Guys-0005-T1.nii.gz").symlink_to(folder / "IXI100-Guys-0000-T1.nii.gz")  # a good link

    summary = ingest(resolve_source(str(folder), None, tmp_path), tmp_path / "v.parquet", tmp_path / "rejected.csv")

    assert summary.accepted == ["IXI100-Guys-0000", "IXI105-Guys-0005"]
    rows = {row["file"]: (row["reason"], row["kind"]) for row in _read_rejected(tmp_path / "rejected.csv")}
    missing = folder / "missing.nii.gz"
    assert rows == {
        "IXI100-Guys-0000-MRA.nii.gz": ("IXI100-Guys-0000-MRA.nii.gz: not a T1 file (modality MRA)", "not-t1"),
        "IXI100-Guys-0000-PD.nii.gz": ("IXI100-Guys-0000-PD.nii.gz: not a T1 file (modality PD)", "not-t1"),
        "IXI100-Guys-0000-T2.nii.gz": ("IXI100-Guys-0000-T2.nii.gz: not a T1 file (modality T2)", "not-t1"),
        "IXI100-Guys-0000_T1.nii.gz": (
            "IXI100-Guys-0000_T1.nii.gz: duplicate of subject IXI100-Guys-0000, already ingested from "
            "IXI100-Guys-0000-T1.nii.gz",
            "duplicate",
        ),
        "IXI101-Guys-0001-T1.nii.gz": ("IXI101-Guys-0001-T1.nii.gz: empty file (0 bytes)", "empty"),
        "IXI102-Guys-0002-T1.nii.gz": (
            f"IXI102-Guys-0002-T1.nii.gz: dangling symbolic link (target {missing} does not exist)",
            "not-a-file",
        ),
        "IXI103-Guys-0003-T1.nii.gz": ("IXI103-Guys-0003-T1.nii.gz: is a directory, not a volume file", "not-a-file"),
        "IXI104-Guys-0004-T1.nii.gz": (
            "IXI104-Guys-0004-T1.nii.gz: not a regular file (device, FIFO or socket)",
            "not-a-file",
        ),
    }
    assert "README.txt" not in rows
    text = format_rejections(summary.rejected)
    assert text.startswith(
        "8 rejected: 3 not a T1 file (IXI100-Guys-0000-MRA.nii.gz, IXI100-Guys-0000-PD.nii.gz, "
        "IXI100-Guys-0000-T2.nii.gz); 3 not a regular file ("
    )
    assert "1 duplicate subject (IXI100-Guys-0000_T1.nii.gz)" in text and "1 empty file (IXI101" in text
    assert summary.rejected_by_kind()["not a regular file"] == [
        "IXI102-Guys-0002-T1.nii.gz",
        "IXI103-Guys-0003-T1.nii.gz",
        "IXI104-Guys-0004-T1.nii.gz",
    ]
    table = pq.read_table(tmp_path / "v.parquet")
    assert table.column("source_file").to_pylist() == ["IXI100-Guys-0000-T1.nii.gz", "IXI105-Guys-0005-T1.nii.gz"]


def test_strict_stops_at_the_first_rejected_file_and_writes_nothing(tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "IXI100-Guys-0000-T1.nii.gz").write_bytes(_volume_bytes())
    (folder / "IXI101-Guys-0001-T1.nii.gz").write_bytes(b"")
    (folder / "IXI102-Guys-0002-T1.nii.gz").write_bytes(_volume_bytes())
    previous = tmp_path / "v.parquet"
    previous.write_bytes(b"previous version")
    source = resolve_source(str(folder), None, tmp_path)
    with pytest.raises(StrictRejection) as info:
        ingest(source, previous, tmp_path / "r.csv", strict=True)
    assert isinstance(info.value, NoUsableVolumes)  # the CLI's exit 1 handles it
    assert str(info.value).startswith("IXI101-Guys-0001-T1.nii.gz: empty file (0 bytes) (data.strict is true")
    assert info.value.rejection.kind == "empty"
    assert previous.read_bytes() == b"previous version"
    assert not (tmp_path / "r.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src", "v.parquet"]  # no temp file left
    # the same source without strict: the bad file is skipped, the run goes on
    summary = ingest(source, previous, tmp_path / "r.csv")
    assert summary.accepted == ["IXI100-Guys-0000", "IXI102-Guys-0002"]


def test_no_usable_volume_message_groups_the_reasons(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    for i in range(3):
        (folder / f"IXI00{i}-HH-000{i}-T1.nii.gz").write_bytes(b"")
    (folder / "IXI009-HH-0009-T1.nii.gz").write_bytes(gzip.compress(b"not an image" * 50))
    with pytest.raises(NoUsableVolumes) as info:
        ingest(resolve_source(str(folder), None, tmp_path), tmp_path / "v.parquet", tmp_path / "r.csv")
    assert str(info.value) == (
        f"no usable IXI T1 volume in {folder} (4 rejected: 3 empty file (IXI000-HH-0000-T1.nii.gz, "
        "IXI001-HH-0001-T1.nii.gz, IXI002-HH-0002-T1.nii.gz); 1 not a NIfTI image (IXI009-HH-0009-T1.nii.gz))"
    )


# --- tar archives: never extracted; unsafe member paths; links; truncation ---


def _add(archive: tarfile.TarFile, name: str, raw: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(raw)
    archive.addfile(info, io.BytesIO(raw))


def _snapshot(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_tar_members_with_unsafe_paths_are_read_by_base_name_never_written(tmp_path, monkeypatch):
    work = tmp_path / "deep" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    escape = tmp_path / "escaped"
    tar_path = tmp_path / "evil.tar"
    with tarfile.open(tar_path, "w") as archive:
        _add(archive, f"{escape}/IXI100-Guys-0000-T1.nii.gz", _volume_bytes(10))  # absolute path
        _add(archive, "../../IXI101-Guys-0001-T1.nii.gz", _volume_bytes(11))
        _add(archive, "../../../etc/evil.txt", b"junk: skipped by name")
        link = tarfile.TarInfo("IXI102-Guys-0002-T1.nii.gz")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
        folder = tarfile.TarInfo("IXI103-Guys-0003-T1.nii.gz")
        folder.type = tarfile.DIRTYPE
        archive.addfile(folder)
    before = _snapshot(tmp_path)
    summary = ingest(resolve_source(str(tar_path), None, tmp_path), work / "v.parquet", work / "r.csv")
    assert summary.accepted == ["IXI100-Guys-0000", "IXI101-Guys-0001"]
    assert _snapshot(tmp_path) - before == {"deep/work/v.parquet", "deep/work/r.csv"}
    assert not escape.exists()
    rows = {row["file"]: row["reason"] for row in _read_rejected(work / "r.csv")}
    assert rows == {
        "IXI102-Guys-0002-T1.nii.gz": "IXI102-Guys-0002-T1.nii.gz: tar member IXI102-Guys-0002-T1.nii.gz is a link "
        "(to /etc/passwd), not a regular file",
        "IXI103-Guys-0003-T1.nii.gz": "IXI103-Guys-0003-T1.nii.gz: tar member IXI103-Guys-0003-T1.nii.gz is a "
        "directory, not a volume file",
    }
    table = pq.read_table(work / "v.parquet", columns=["source_file"])
    assert table.column("source_file").to_pylist() == ["IXI100-Guys-0000-T1.nii.gz", "IXI101-Guys-0001-T1.nii.gz"]


@pytest.mark.parametrize("mode", ["w", "w:gz"])
def test_truncated_tar_keeps_the_files_read_before(tmp_path, mode):
    rng = np.random.default_rng(0)
    full = tmp_path / "full.tar"
    with tarfile.open(full, mode) as archive:
        for i in range(3):
            data = rng.random((12, 12, 10), np.float32) + 1  # incompressible: a cut lands inside member 3
            _add(archive, f"IXI10{i}-Guys-000{i}-T1.nii.gz", to_nifti_bytes(data))
    raw = full.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(raw[: int(len(raw) * 0.8)])
    source = resolve_source(str(cut), None, tmp_path)
    summary = ingest(source, tmp_path / "v.parquet", tmp_path / "r.csv")
    assert summary.accepted == ["IXI100-Guys-0000", "IXI101-Guys-0001"]
    [(name, reason, kind)] = summary.rejected
    assert name == "cut.tar" and kind == "truncated-archive"
    assert reason.startswith(
        "cut.tar: tar archive truncated or damaged while reading member IXI102-Guys-0002-T1.nii.gz "
        "after 2 volume file(s) read ("
    )
    assert reason.endswith("the files read before are kept, the rest of the archive is missing")
    assert _read_rejected(tmp_path / "r.csv")[0]["file"] == "cut.tar"
    assert pq.read_table(tmp_path / "v.parquet").num_rows == 2


def test_iter_source_items_reports_reasons_without_reading_bad_entries(tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "IXI100-Guys-0000-T1.nii.gz").write_bytes(b"x")
    (folder / "IXI100-Guys-0000-T2.nii.gz").write_bytes(b"y")
    (folder / "notes.md").write_text("z")
    items = list(iter_source_items(resolve_source(str(folder), None, tmp_path)))
    assert [(i.name, i.raw, i.error is None) for i in items] == [
        ("IXI100-Guys-0000-T1.nii.gz", b"x", True),
        ("IXI100-Guys-0000-T2.nii.gz", None, False),
    ]
    assert readable_names(resolve_source(str(folder), None, tmp_path)) == ["IXI100-Guys-0000-T1.nii.gz"]


# --- downloads: sha256 checked; redirects only to the same host, never https -> http ---


@pytest.mark.parametrize(
    "old,new,allowed",
    [
        ("http://127.0.0.1:8000/a", "http://127.0.0.1:8000/b", True),
        ("https://github.com/o/r/raw/c/f", "https://raw.githubusercontent.com/o/r/c/f", True),
        ("http://example.org/a", "https://example.org/a", True),  # upgrade on the same host
        ("https://example.org/a", "http://example.org/a", False),  # downgrade
        ("https://github.com/o/r/raw/c/f", "http://raw.githubusercontent.com/o/r/c/f", False),
        ("http://127.0.0.1:8000/a", "http://localhost:8000/a", False),  # another host name
        ("http://127.0.0.1:8000/a", "http://127.0.0.1:8001/a", False),  # another port
        ("https://example.org/a", "https://evil.example.net/a", False),
        ("https://example.org/a", "ftp://example.org/a", False),
    ],
)
def test_check_redirect(old, new, allowed):
    if allowed:
        check_redirect(old, new)
    else:
        with pytest.raises(RedirectRefused, match="refusing redirect from"):
            check_redirect(old, new)


@pytest.fixture
def redirect_server():
    """127.0.0.1 server: /data/NAME serves bytes, /same/NAME redirects to /data/NAME on the same
    host, /other/NAME redirects to the same port under the host name 'localhost'."""
    payload = _volume_bytes()
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server API
            seen.append(self.path)
            port = self.server.server_address[1]
            name = self.path.rsplit("/", 1)[-1]
            if self.path.startswith("/data/"):
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            target = f"/data/{name}" if self.path.startswith("/same/") else f"http://localhost:{port}/data/{name}"
            self.send_response(302)
            self.send_header("Location", target)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", payload, seen
    server.shutdown()
    server.server_close()


def _one_file_manifest(monkeypatch, payload: bytes) -> str:
    name = "IXI100-Guys-0000_T1.nii.gz"
    row = {
        "file": name,
        "bytes": str(len(payload)),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "repo": "o/r",
        "commit": "c",
        "path": f"p/{name}",
    }
    monkeypatch.setattr(sources, "sample_manifest", lambda: [row])
    return name


def test_download_follows_a_same_host_redirect_and_checks_sha256(tmp_path, monkeypatch, redirect_server):
    base, payload, seen = redirect_server
    name = _one_file_manifest(monkeypatch, payload)
    [path] = fetch_sample(tmp_path / "cache", base_url=base + "/same/{file}")
    assert path == tmp_path / "cache" / name and path.read_bytes() == payload
    assert seen == [f"/same/{name}", f"/data/{name}"]


def test_download_refuses_a_redirect_to_another_host(tmp_path, monkeypatch, redirect_server):
    base, payload, seen = redirect_server
    name = _one_file_manifest(monkeypatch, payload)
    port = base.rsplit(":", 1)[1]
    with pytest.raises(RedirectRefused) as info:
        fetch_sample(tmp_path / "cache", base_url=base + "/other/{file}")
    assert str(info.value) == (
        f"cannot download {name}: refusing redirect from {base}/other/{name} to http://localhost:{port}/data/{name}: "
        f"another host (localhost:{port} instead of 127.0.0.1:{port})"
    )
    assert seen == [f"/other/{name}"]  # the redirect target was never requested
    assert list((tmp_path / "cache").iterdir()) == []


def test_download_with_wrong_content_is_refused(tmp_path, monkeypatch, redirect_server):
    base, payload, _ = redirect_server
    name = _one_file_manifest(monkeypatch, payload + b"tampered")
    with pytest.raises(SourceError, match=f"{name} from .*: sha256 .* does not match the manifest"):
        fetch_sample(tmp_path / "cache", base_url=base + "/data/{file}")
    assert list((tmp_path / "cache").iterdir()) == []


def test_oversized_files_are_rejected_unread(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "MAX_FILE_BYTES", 100)
    folder = tmp_path / "src"
    folder.mkdir()
    big = _volume_bytes(10)
    assert len(big) > 100
    (folder / "IXI100-Guys-0000-T1.nii.gz").write_bytes(big)
    tar_path = tmp_path / "big.tar"
    with tarfile.open(tar_path, "w") as archive:
        _add(archive, "IXI101-Guys-0001-T1.nii.gz", big)
    for source in (str(folder), str(tar_path)):
        [item] = list(iter_source_items(resolve_source(source, None, tmp_path)))
        assert item.raw is None and item.error.kind == "file-too-large"
        assert str(item.error).endswith(f": file is {len(big) / 1e9:.1f} GB, over the 0.0 GB limit")
