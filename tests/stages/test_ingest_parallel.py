"""Parallel ingestion writes exactly what sequential ingestion writes, in the same order."""

import hashlib

import numpy as np
from helpers import to_nifti_bytes

from mrirecon.data.sources import resolve_source
from mrirecon.ops.provenance import file_md5
from mrirecon.stages.ingest import ingest


def test_two_workers_write_the_same_file_as_one(tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    for i in range(7):
        data = np.zeros((16, 16, 12), np.float32)
        data[4:12, 3:13, 2:10] = 10 + i
        (folder / f"IXI{100 + i:03d}-IOP-{i:04d}-T1.nii.gz").write_bytes(to_nifti_bytes(data))
    (folder / "IXI103-IOP-0003_T1.nii.gz").write_bytes(to_nifti_bytes(np.ones((4, 4, 4), np.float32)))  # duplicate
    (folder / "IXI200-IOP-0200-T1.nii.gz").write_bytes(b"")  # empty
    source = resolve_source(str(folder), None, tmp_path)
    one = ingest(source, tmp_path / "one.parquet", tmp_path / "one.csv", workers=1)
    two = ingest(source, tmp_path / "two.parquet", tmp_path / "two.csv", workers=2)
    assert one.accepted == two.accepted and len(one.accepted) == 7
    assert [r.kind for r in two.rejected] == ["duplicate", "empty"]
    assert file_md5(tmp_path / "one.parquet") == file_md5(tmp_path / "two.parquet")
    assert file_md5(tmp_path / "one.parquet") == hashlib.md5((tmp_path / "one.parquet").read_bytes()).hexdigest()
    assert (tmp_path / "one.csv").read_text() == (tmp_path / "two.csv").read_text()
    limited = ingest(source, tmp_path / "three.parquet", tmp_path / "three.csv", workers=2, limit=3)
    assert limited.accepted == one.accepted[:3]
