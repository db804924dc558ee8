"""No command deletes or writes into its inputs, and a killed study leaves no person-level scratch.

Issue 10, items 6 and 9, on the installed commands (``extracts/targets.py``, ``extracts/atomic.py``):

- every command refuses an ``out`` that is, holds or lies inside one of its inputs (symbolic links
  resolved), the file-system root, the home folder, a folder above the current one, or a folder
  inside person-level records: exit 2, before anything is read, written or deleted, even with
  ``overwrite=true``;
- ``pfl-study`` spills its person-level claim units to an owner-only folder beside its output,
  never to ``$TMPDIR``; a SIGKILLed study's scratch is removed by the next run on that output.
"""

from __future__ import annotations

import hashlib
import signal
from pathlib import Path

import pytest
from command_runner import assert_clean_failure, command_in_process, run_command, signal_when
from study_builder import write_study

from extracts.generator.config import GeneratorConfig
from extracts.generator.run import generate
from linkage.link import link
from pseudonymisation.keys import generate_key
from pseudonymisation.supplier import run_supplier_step
from pseudonymisation.ttp import run_ttp_step

SUPPLIERS = ("ehr", "claims")


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every stage's output once, on a small population: the inputs the commands must not touch."""
    root = tmp_path_factory.mktemp("outputs")
    config = GeneratorConfig(preset="tiny", registered_patients=400, practices=2, seed=5)
    extracts = generate(config, root / "extracts").out
    network = generate_key(root / "keys" / "network.key", "network")
    ttp = generate_key(root / "keys" / "ttp.key", "ttp")
    for s in SUPPLIERS:
        run_supplier_step(extracts / s, s, network, root / "supplier" / s)
    run_ttp_step({s: root / "supplier" / s / "for_ttp" for s in SUPPLIERS}, ttp, "safety", root / "ttp",
                 expected_network_key_id=network.id)
    link({s: root / "supplier" / s / "for_research" for s in SUPPLIERS}, {s: root / "ttp" / s for s in SUPPLIERS},
         root / "linked", project="safety")
    write_study(root / "study", [30])
    (root / "ledger").mkdir()
    (root / "link-to-extracts").symlink_to(root / "extracts")
    return root


def _snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root``, hidden ones included, with the files' SHA-256."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def _args(command: str, root: Path, out: str) -> list[str]:
    out = out.replace("ROOT", str(root))
    supplier = [f"extract={root}/extracts/ehr", f"network_key={root}/keys/network.key", "supplier=ehr"]
    ttp = [f"+inputs.{s}={root}/supplier/{s}/for_ttp" for s in SUPPLIERS] + [
        f"ttp_key={root}/keys/ttp.key", "project=safety"]
    linked = [f"content.{s}={root}/supplier/{s}/for_research" for s in SUPPLIERS] + [
        f"token_maps.{s}={root}/ttp/{s}" for s in SUPPLIERS] + ["project=safety"]
    settings = {
        "pfl-generate": ["preset=tiny"], "pfl-supplier": supplier, "pfl-ttp": ttp, "pfl-link": linked,
        "pfl-study": [f"linked={root}/linked"], "pfl-release": [f"study={root}/study", f"ledger={root}/ledger"],
    }[command]
    return [*settings, f"out={out}", "overwrite=true"]


CASES = [
    ("pfl-generate", "/", "the root of the file system"),
    ("pfl-generate", "ROOT/extracts/ehr/new", "person-level records (patients.parquet)"),
    ("pfl-supplier", "ROOT/extracts", "holds the input extract="),  # the example: both extracts
    ("pfl-supplier", "ROOT/extracts/ehr", "is the input extract="),
    ("pfl-supplier", "ROOT/link-to-extracts", "holds the input extract="),  # a symbolic link is its target
    ("pfl-supplier", "ROOT/keys", "holds the input network_key="),
    ("pfl-supplier", "ROOT/extracts/claims/out", "person-level records (insured.parquet)"),
    ("pfl-ttp", "ROOT/supplier", "holds the input inputs.ehr="),
    ("pfl-ttp", "ROOT/supplier/claims/for_ttp", "is the input inputs.claims="),
    ("pfl-ttp", "ROOT", "holds the input inputs.ehr="),
    ("pfl-link", "ROOT/supplier", "holds the input content.ehr="),
    ("pfl-link", "ROOT/ttp/claims", "is the input token_maps.claims="),
    ("pfl-study", "ROOT/linked", "is the input linked="),
    ("pfl-study", "ROOT/linked/out", "lies inside the input linked="),
    ("pfl-release", "ROOT/study", "is the input study="),
    ("pfl-release", "ROOT", "holds the input study="),
]


@pytest.mark.parametrize(("command", "out", "says"), CASES, ids=[f"{c}-{o}" for c, o, _ in CASES])
def test_a_command_refuses_an_output_on_in_or_around_its_inputs_and_changes_nothing(
    command: str, out: str, says: str, chain: Path, tmp_path: Path
) -> None:
    before = _snapshot(chain)
    proc = command_in_process(command, *_args(command, chain, out), cwd=tmp_path / "cwd")
    assert_clean_failure(proc, 2, says)
    assert _snapshot(chain) == before  # nothing read into, deleted or written (no lock file either)


@pytest.mark.parametrize(("work", "says"), [("HOME", "your home folder"), ("CWD/..", "holds the current folder")])
def test_the_demo_refuses_a_system_folder_as_its_work_folder(work: str, says: str, tmp_path: Path) -> None:
    home, cwd = tmp_path / "h" / "home", tmp_path / "c" / "cwd"
    home.mkdir(parents=True)
    (home / "thesis.txt").write_text("keep me")
    work = work.replace("HOME", str(home)).replace("CWD", str(cwd))
    proc = command_in_process("pfl-demo", "preset=tiny", f"work={work}", cwd=cwd, env={"HOME": str(home)})
    assert_clean_failure(proc, 2, says)
    assert (home / "thesis.txt").read_text() == "keep me"
    assert not (home / "extracts").exists() and not (cwd.parent / "extracts").exists()


def _claim_units(folder: Path) -> list[Path]:
    return list(folder.rglob("claim_units.parquet")) if folder.exists() else []


def test_a_killed_study_leaves_no_person_level_scratch_in_tmpdir_and_the_next_run_removes_its_own(
    tiny_linked: Path, tmp_path: Path
) -> None:
    tmpdir, out = tmp_path / "tmpdir", tmp_path / "results" / "study"
    tmpdir.mkdir()
    env = {"TMPDIR": str(tmpdir)}
    args = (f"linked={tiny_linked}", f"out={out}")
    proc, sent = signal_when(
        "pfl-study", *args, cwd=tmp_path / "cwd", env=env, signum=signal.SIGKILL,
        ready=lambda: bool(_claim_units(out.parent) or _claim_units(tmpdir)),
    )
    assert sent, "the study finished before it could be killed; give it more data"
    assert proc.returncode == -signal.SIGKILL
    assert _claim_units(tmpdir) == [], "person-level claim units were spilled to $TMPDIR"
    (scratch,) = [p.parent for p in _claim_units(out.parent)]
    assert scratch.parent == out.parent and scratch.name.startswith(".study.scratch-")
    assert scratch.stat().st_mode & 0o077 == 0  # owner-only
    rerun = run_command("pfl-study", *args, cwd=tmp_path / "cwd", env=env)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert sorted(p.name for p in out.parent.iterdir()) == ["study"]  # scratch, partial and lock gone
    assert _claim_units(tmpdir) == []
