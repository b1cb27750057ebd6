"""git_commit in a real temporary git repository: dirty for changed source, not for what a run writes."""

import subprocess

from conftest import git_env

from mrirecon.ops.provenance import dvc_outputs, git_commit

DVC_YAML = """stages:
  evaluate:
    cmd: mrirecon evaluate
    outs:
      - reports/figures
      - reports/plots/sweep.csv:
          cache: false
    metrics:
      - reports/metrics.json:
          cache: false
"""


def _git(repo, *args) -> str:
    return subprocess.run(["git", *args], cwd=repo, env=git_env(), capture_output=True, text=True, check=True).stdout


def _repo(tmp_path):
    repo = tmp_path / "repo"
    files = {
        "dvc.yaml": DVC_YAML,
        "dvc.lock": "schema: '2.0'\n",
        "params.yaml": "profile: {name: default}\n",
        "params-quick.yaml": "profile: {name: quick}\n",
        "mrirecon/fft.py": "x = 1\n",
        "reports/metrics.json": "{}\n",
        "reports/plots/sweep.csv": "a\n1\n",
    }
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "init")
    return repo, _git(repo, "rev-parse", "HEAD").strip()


def test_dvc_outputs_lists_outs_and_metrics(tmp_path):
    repo, _ = _repo(tmp_path)
    assert dvc_outputs(repo) == ["reports/figures", "reports/plots/sweep.csv", "reports/metrics.json"]
    assert dvc_outputs(tmp_path / "nowhere") == []


def test_files_a_run_writes_do_not_make_the_commit_dirty(tmp_path):
    repo, head = _repo(tmp_path)
    assert len(head) == 40 and git_commit(repo) == head
    (repo / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    (repo / "params.yaml").write_text("profile: {name: quick}\n")  # mrirecon run --profile quick
    (repo / "reports/metrics.json").write_text('{"psnr": 30}\n')
    (repo / "reports/plots/sweep.csv").write_text("a\n2\n")
    (repo / "untracked.txt").write_text("scratch\n")
    assert git_commit(repo) == head


def test_changed_source_or_profile_file_makes_it_dirty(tmp_path):
    repo, head = _repo(tmp_path)
    (repo / "mrirecon/fft.py").write_text("x = 2\n")
    assert git_commit(repo) == f"{head}-dirty"
    _git(repo, "add", "mrirecon/fft.py")  # staged counts too
    assert git_commit(repo) == f"{head}-dirty"
    _git(repo, "checkout", "-q", "HEAD", "--", "mrirecon/fft.py")
    assert git_commit(repo) == head
    (repo / "params-quick.yaml").write_text("profile: {name: quick, register_models: true}\n")
    assert git_commit(repo) == f"{head}-dirty"


def test_outside_git_is_unknown(tmp_path):
    assert git_commit(tmp_path) == "unknown"
