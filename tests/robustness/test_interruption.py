"""An interrupted stage leaves no output that looks complete, and a rerun completes (issue 6).

Each stage runs as the installed command on generated data and is signalled the moment its
``.<name>.partial-<random>`` folder appears (``extracts/atomic.py``: the stage is then writing its
output):

- SIGINT (Ctrl-C): exit 130 with a message and no traceback; the partial folder is removed;
- SIGKILL (no chance to clean up): no output folder; at most the partial folder, which never
  looks complete, the owner-only scratch folder of person-level partials (issue 14: the supplier
  step's partitions) and the lock file (harmless: the kernel dropped the lock with the process).

In both cases a rerun of the same command completes and removes what the killed run left.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from command_runner import assert_clean_failure, run_command, signal_when

from extracts.generator.config import GeneratorConfig
from extracts.generator.run import GenerationResult, generate
from pseudonymisation.keys import generate_key

# Big enough that writing takes a good part of a second (the signal lands mid-write), small
# enough for CI: about 1 s per generation.
PATIENTS = 5000
SIGNALS = [pytest.param(signal.SIGINT, id="SIGINT"), pytest.param(signal.SIGKILL, id="SIGKILL")]


@pytest.fixture(scope="module")
def extracts(tmp_path_factory: pytest.TempPathFactory) -> GenerationResult:
    config = GeneratorConfig(preset="tiny", registered_patients=PATIENTS, practices=8, seed=11)
    return generate(config, tmp_path_factory.mktemp("interrupt") / "extracts")


def _partials(out: Path) -> list[Path]:
    return list(out.parent.glob(f".{out.name}.partial-*"))


def _interrupt_and_rerun(command: str, args: list[str], out: Path, cwd: Path, signum: int) -> None:
    proc, sent = signal_when(command, *args, cwd=cwd, ready=lambda: bool(_partials(out)), signum=signum)
    assert sent, f"{command} finished before it could be interrupted; give it more data"
    assert not out.exists(), "an interrupted stage published its output"
    if signum == signal.SIGINT:
        assert_clean_failure(proc, 130, "interrupted")
        assert not _partials(out), "Ctrl-C: the partial output was not removed"
    else:
        assert proc.returncode == -signal.SIGKILL
        leftovers = {p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")}
        scratch = {p.name for p in out.parent.glob(f".{out.name}.scratch-*")}  # partition parts (issue 14)
        assert leftovers <= {p.name for p in _partials(out)} | scratch | {f".{out.name}.lock"}  # nothing looks complete
    rerun = run_command(command, *args, cwd=cwd)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert (out / "manifest.json").is_file() or any(out.rglob("manifest.json"))
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")] == []


@pytest.mark.parametrize("signum", SIGNALS)
def test_interrupted_generation_publishes_nothing_and_a_rerun_completes(
    signum: int, tmp_path: Path
) -> None:
    out = tmp_path / "extracts"
    args = ["preset=tiny", f"preset.registered_patients={PATIENTS}", "preset.practices=8",
            f"out={out}"]
    _interrupt_and_rerun("pfl-generate", args, out, tmp_path / "cwd", signum)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows"]["claims/claims"] > 0


@pytest.mark.parametrize("signum", SIGNALS)
def test_interrupted_supplier_step_publishes_nothing_and_a_rerun_completes(
    signum: int, extracts: GenerationResult, tmp_path: Path
) -> None:
    key = tmp_path / "keys" / "network.key"
    generate_key(key, "network")
    out = tmp_path / "claims"
    args = ["supplier=claims", f"extract={extracts.out / 'claims'}", f"out={out}", f"network_key={key}"]
    _interrupt_and_rerun("pfl-supplier", args, out, tmp_path / "cwd", signum)
    for part in ("for_ttp/identifiers.parquet", "for_research/claims.parquet", "supplier_report.json"):
        assert (out / part).is_file(), part


# The fallback made slow where it compares (one pair per block, half a millisecond each: a minute
# for its 200,000 random pairs alone), so that Ctrl-C surely lands while it runs on its thread.
_SLOW_FALLBACK = """
import sys, time
import pseudonymisation.comparison as comparison
levels = comparison._levels_chunk
def slow(*args):
    time.sleep(0.0005)
    levels(*args)
comparison._levels_chunk, comparison._CHUNK = slow, 1
from commands.scripts import ttp
sys.argv = ["pfl-ttp", *sys.argv[1:]]
ttp()
"""


def test_ctrl_c_stops_the_ttp_fallback_promptly_and_leaves_no_partial_output(
    tiny_extracts: GenerationResult, tmp_path: Path
) -> None:
    """Ctrl-C in pfl-ttp while its fallback runs on its thread (pseudonymisation/ttp.py) stops the
    fallback at its next block (pseudonymisation/stopping.py): exit 130 within seconds, not after
    the fallback's whole work (about 20 s at nivel size; here over a minute), no partial output."""
    import subprocess
    import sys
    import time

    from fallback_planting import plant_identifiers

    from command_runner import command_env
    from pseudonymisation.supplier import run_supplier_step

    plant_identifiers(tiny_extracts.out, tmp_path / "extracts", missing_bsn_share=0.05, seed=3)
    network = generate_key(tmp_path / "keys" / "network.key", "network")
    generate_key(tmp_path / "keys" / "ttp.key", "ttp")
    for s in ("ehr", "claims"):
        run_supplier_step(tmp_path / "extracts" / s, s, network, tmp_path / s)
    out = tmp_path / "ttp"
    args = ["project=fb", f"out={out}", f"ttp_key={tmp_path / 'keys' / 'ttp.key'}",
            f"+inputs.ehr={tmp_path / 'ehr' / 'for_ttp'}", f"+inputs.claims={tmp_path / 'claims' / 'for_ttp'}"]
    (tmp_path / "cwd").mkdir()
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_FALLBACK, *args], cwd=tmp_path / "cwd", env=command_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not _partials(out) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)  # the partial folder: the mapping writes while the fallback compares
        assert proc.poll() is None and _partials(out), "pfl-ttp ended before it could be interrupted"
        time.sleep(0.5)  # well inside the fallback (it takes over a minute here)
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        stdout, stderr = proc.communicate(timeout=150)
        waited = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert_clean_failure(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), 130, "interrupted")
    assert waited < 15, f"Ctrl-C waited {waited:.1f} s for the fallback"
    assert not out.exists() and not _partials(out)
