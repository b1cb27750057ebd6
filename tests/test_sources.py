"""Data sources: precedence, clear errors, tar streaming, and the sample download (local HTTP)."""

import functools
import http.server
import io
import tarfile
import threading
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from mrirecon.ingest import NoUsableVolumes, ingest
from mrirecon.sources import SourceError, fetch_sample, iter_source_files, resolve_source
from mrirecon.storage import decode_array, parquet_metadata
from mrirecon.volumes import to_nifti_bytes


def write_synthetic_dir(folder: Path, n: int = 3) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        name = f"IXI{100 + i:03d}-Guys-{i:04d}-T1.nii.gz"
        data = np.zeros((12, 12, 10), np.float32)
        data[3:9, 3:9, 2:8] = 10 + i
        (folder / name).write_bytes(to_nifti_bytes(data))
        names.append(name)
    (folder / "IXI100-Guys-0000-T2.nii.gz").write_bytes(b"other modality")  # ignored by name
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
    assert [n for n, _ in iter_source_files(source)] == [*names, "IXI999-IOP-0999-T1.nii.gz"]
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
