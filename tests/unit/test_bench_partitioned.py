"""The partitioned pipeline's benchmark measures the driver and its workers apart (issue 14, item 6)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "partitioned_pipeline.py"


@pytest.fixture(scope="module")
def bench():  # noqa: ANN201 - the script's module
    spec = importlib.util.spec_from_file_location("partitioned_pipeline", SCRIPT)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr] - its dataclasses look their module up
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        yield module
    finally:
        del sys.modules[spec.name]  # type: ignore[union-attr]


# A driver of ~0 MB that starts a worker holding 300 MB for a second.
WORKER = "import time; b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(1.0)"
DRIVER = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {WORKER!r}], check=True)"


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads /proc")
def test_a_stage_reports_its_driver_and_its_largest_worker_apart(bench, tmp_path: Path) -> None:
    r = bench.run_stage([sys.executable, "-c", DRIVER], tmp_path, dict(os.environ))
    assert r["worker_gb"] > 0.3
    assert r["driver_gb"] < 0.15  # the worker's memory is not the driver's
    assert r["largest_gb"] >= r["worker_gb"]
    assert r["tree_gb"] >= r["worker_gb"]
    assert r["cpu_s"] > 0.05  # the worker wrote 300 MB


def test_a_failing_stage_is_reported_with_its_command(bench, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="exited 3"):
        bench.run_stage([sys.executable, "-c", "import sys; sys.exit(3)"], tmp_path, dict(os.environ))


def test_a_data_set_is_a_preset_or_an_extract_with_its_stages(bench) -> None:
    demo = bench.DataSet.parse("demo")
    assert demo.extracts is None and demo.stages == bench.STAGES and demo.before() == ()
    nivel = bench.DataSet.parse("nivel=/data/nivel:study,link")
    assert nivel.extracts == Path("/data/nivel") and nivel.stages == ("link", "study")
    assert nivel.before() == ("supplier_ehr", "supplier_claims", "ttp")  # an extract is not generated
    assert bench.DataSet.parse("tiny:study").before()[0] == "generate"
    with pytest.raises(SystemExit, match="no stage"):
        bench.DataSet.parse("nivel=/data/nivel:generate")


def _failing(*args: object, **kwargs: object) -> dict:
    raise RuntimeError("stage link exited 1")


def test_a_failed_run_keeps_a_named_work_folder_and_says_so(bench, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A country run's folder holds an hour of earlier stages: a failure must not delete it (it did)."""
    work = tmp_path / "work"
    (work / "country-0-local-1-auto" / "linked").mkdir(parents=True)
    monkeypatch.setattr(bench, "run_data", _failing)
    monkeypatch.setattr(sys, "argv", ["partitioned_pipeline.py", "--data", "demo", "--work", str(work)])
    with pytest.raises(RuntimeError, match="exited 1"):
        bench.main()
    assert (work / "country-0-local-1-auto" / "linked").is_dir()
    assert f"kept {work}" in capsys.readouterr().out


def test_a_failed_run_removes_its_own_temporary_folder(bench, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    temporary = tmp_path / "pfl-partitioned-x"
    temporary.mkdir()
    monkeypatch.setattr(bench.tempfile, "mkdtemp", lambda **kw: str(temporary))
    monkeypatch.setattr(bench, "run_data", _failing)
    monkeypatch.setattr(sys, "argv", ["partitioned_pipeline.py", "--data", "demo"])
    with pytest.raises(RuntimeError, match="exited 1"):
        bench.main()
    assert not temporary.exists()
