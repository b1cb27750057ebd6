"""Running with a params profile leaves the user's params.yaml byte for byte as it was."""

from __future__ import annotations

import pytest

from mrirecon.ops.profiles import BACKUP, profile_params

USER = b"# my params\ntrain: {seed: 1}   # with a comment\n"
QUICK = b"train: {seed: 2}\n"


@pytest.fixture
def project(tmp_path):
    (tmp_path / "params.yaml").write_bytes(USER)
    (tmp_path / "params-quick.yaml").write_bytes(QUICK)
    return tmp_path


def test_profile_is_active_inside_and_the_users_file_is_back_after(project):
    with profile_params(project, "quick") as params:
        assert params.read_bytes() == QUICK and (project / BACKUP).read_bytes() == USER
    assert (project / "params.yaml").read_bytes() == USER and not (project / BACKUP).exists()
    with profile_params(project, None):
        assert (project / "params.yaml").read_bytes() == USER


def test_the_users_file_is_back_after_an_error_and_after_a_killed_run(project):
    with pytest.raises(RuntimeError), profile_params(project, "quick"):
        raise RuntimeError("stage failed")
    assert (project / "params.yaml").read_bytes() == USER
    # a run killed while the profile was active left the profile in place and the backup beside it
    (project / BACKUP).write_bytes(USER)
    (project / "params.yaml").write_bytes(QUICK)
    with profile_params(project, "default") as params:
        assert params.read_bytes() == USER and not (project / BACKUP).exists()


def test_unknown_profile_names_the_missing_file(project):
    with pytest.raises(FileNotFoundError, match="params-nope.yaml not found"), profile_params(project, "nope"):
        pass
    assert (project / "params.yaml").read_bytes() == USER
