"""``python -m execution``: what the workers of an executor see (docs/guide-cluster.md)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from execution import Executor
from execution.probe import probe_workers, report


def test_every_worker_sees_the_project_the_shared_folder_and_the_key_reference(
        executor_case: tuple[Executor, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ex, k = executor_case
    key = tmp_path / "network.key"
    key.write_text("not read\n")
    views = probe_workers(ex, tasks=k, shared=tmp_path, key_ref=str(key))
    assert len(views) == k
    assert all(v.project and v.shared and v.key for v in views)
    assert report(views, ex.name, out=io.StringIO())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["network.key"]  # the probe file is gone


def test_a_missing_key_or_folder_is_reported_and_fails(tmp_path: Path) -> None:
    from execution import LocalExecutor

    with LocalExecutor() as ex:
        views = probe_workers(ex, tasks=2, key_ref=str(tmp_path / "none.key"))
    assert [v.key for v in views] == [False, False] and views[0].shared is None
    out = io.StringIO()
    assert not report(views, "local", out=out)
    assert "key reference does NOT resolve" in out.getvalue()


def test_the_check_runs_as_a_module_with_its_exit_codes(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "execution", *args], capture_output=True, text=True,
                              check=False, timeout=120, env={"PATH": "/usr/bin:/bin", "PFL_K": str(tmp_path)})

    ok = run("--executor", "processes", "--workers", "2", "--shared", str(tmp_path), "--key", "env:PFL_K")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[-1].startswith("ok: 4 tasks")
    lacking = run("--key", "env:PFL_NOT_SET")
    assert lacking.returncode == 1 and "lack what a partitioned stage needs" in lacking.stderr
    usage = run("--shared", str(tmp_path / "none"))
    assert usage.returncode == 2 and "is not a folder" in usage.stderr
    assert "Traceback" not in ok.stderr + lacking.stderr + usage.stderr


@pytest.mark.parametrize("value", ["ab" * 32, "pfl-key/1 role=network\n" + "cd" * 32, "AB" * 16 + "0f" * 16])
def test_key_material_given_as_the_key_reference_never_reaches_a_task(value: str) -> None:
    # A key pasted where its reference belongs went into every task (the scheduler's graph, its
    # logs) and back in the answer; refused before anything is sent, without echoing it.
    from execution import LocalExecutor

    class Recording(LocalExecutor):
        sent: list = []

        def map(self, fn, items):
            self.sent.extend(items)
            return super().map(fn, items)

    with Recording() as ex, pytest.raises(ValueError, match="looks like key material") as caught:
        probe_workers(ex, tasks=2, key_ref=value)
    assert Recording.sent == []
    assert value not in str(caught.value) and value.strip()[-16:] not in str(caught.value)
    proc = subprocess.run([sys.executable, "-m", "execution", "--key", value], capture_output=True, text=True,
                          check=False, timeout=120)
    assert proc.returncode == 2 and "looks like key material" in proc.stderr
    assert value.strip()[-16:] not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
