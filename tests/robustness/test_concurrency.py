"""Two runs on one output folder at once: never a corrupt output, never a silent replacement.

Issue 10, item 8, with real processes: two ``pfl-supplier`` runs start together on one output,
12 rounds (4 of each kind below). A run holds the output's lock from its first check to its publication
(``extracts/atomic.py``); the second run fails at once with exit 9 (busy, or the output exists),
or, after the first ended, replaces the output only when given ``overwrite=true``. Whatever the
interleaving, the output at its name is one run's complete output: every file matches its
manifest's SHA-256 and the three parts carry one batch id.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from command_runner import BIN, command_env

from extracts.atomic import file_sha256
from extracts.generator.config import GeneratorConfig
from extracts.generator.run import generate
from pseudonymisation.keys import generate_key

# Every round's assertions hold whatever the interleaving; the interleavings that matter are forced
# one by one in tests/unit/test_atomic.py (a run on a held lock refused at once, a killed holder's
# lock, a replacement killed while it publishes, overwrite rechecked at publication). These rounds
# add real timing, 4 of each kind: 24 processes (20 rounds took 40 and a minute of CPU).
ROUNDS = 12


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("concurrency")
    config = GeneratorConfig(preset="tiny", registered_patients=300, practices=2, seed=3)
    extracts = generate(config, root / "extracts").out
    generate_key(root / "network.key", "network")
    return extracts / "claims", root / "network.key"


def _batch_of_a_complete_output(out: Path) -> str:
    """The output's batch id, after checking every file against its manifest."""
    batches = set()
    for part in ("for_ttp", "for_research"):
        manifest = json.loads((out / part / "manifest.json").read_text())
        assert {p.name for p in (out / part).iterdir()} == {"manifest.json", *manifest["sha256"]}, part
        for name, digest in manifest["sha256"].items():
            assert file_sha256(out / part / name) == digest, f"{part}/{name} fails its checksum"
        batches.add(manifest["batch_id"])
    batches.add(json.loads((out / "supplier_report.json").read_text())["batch_id"])
    assert len(batches) == 1, "the output mixes two runs"
    return batches.pop()


def _together(extract: Path, key: Path, out: Path, cwd: Path, overwrites: tuple[bool, bool]) -> list[int]:
    procs = [subprocess.Popen([str(BIN / "pfl-supplier"), "supplier=claims", f"extract={extract}", f"out={out}",
                               f"network_key={key}", f"overwrite={str(o).lower()}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=cwd,
                              env=command_env()) for o in overwrites]
    codes = []
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert "Traceback" not in err, err[-2000:]
        codes.append(proc.returncode)
    return codes


def test_two_runs_at_once_on_one_output_publish_one_complete_output_and_replace_only_when_asked(
    inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    extract, key = inputs
    out, cwd = tmp_path / "out", tmp_path / "cwd"
    cwd.mkdir()
    for round_ in range(ROUNDS):
        kind = round_ % 3
        if kind == 0:  # a new output, neither may replace: exactly one publishes
            shutil.rmtree(out, ignore_errors=True)
            codes = _together(extract, key, out, cwd, (False, False))
            assert sorted(codes) == [0, 9], f"round {round_}: exits {codes}"
            _batch_of_a_complete_output(out)
        elif kind == 1:  # both may replace: each publishes whole or is turned away as busy
            codes = _together(extract, key, out, cwd, (True, True))
            assert set(codes) <= {0, 9} and 0 in codes, f"round {round_}: exits {codes}"
            _batch_of_a_complete_output(out)
        else:  # one may replace, one may not: the one that may not never does
            before = _batch_of_a_complete_output(out)
            codes = _together(extract, key, out, cwd, (False, True))
            assert codes[0] == 9 and codes[1] in (0, 9), f"round {round_}: exits {codes}"
            after = _batch_of_a_complete_output(out)
            assert (after != before) == (codes[1] == 0), f"round {round_}: replaced by a run that exited {codes}"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "out"], f"round {round_}: leftovers"
