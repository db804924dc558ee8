"""The demo job end to end on the tiny preset: every stage, rerunnable, no key material written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from conftest import TINY
from omegaconf import OmegaConf

from cohort.config import parse_study
from extracts.codelists import load_catalogue
from extracts.generator.run import DEFAULT_CATALOGUE
from pipeline.demo import run_demo

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_every_stage_and_reruns(tmp_path: Path) -> None:
    catalogue = load_catalogue(DEFAULT_CATALOGUE)
    first = run_demo(TINY, catalogue, tmp_path / "work", max_quarantine_share=0.01)
    names = [s.name for s in first.stages]
    assert names == ["generate extracts", "supplier step: ehr", "supplier step: claims", "TTP step", "linkage"]
    for stage in first.stages:
        assert all(p.exists() for p in stage.outputs), stage.name
    second = run_demo(TINY, catalogue, tmp_path / "work", max_quarantine_share=0.01)
    assert second.stages[0].summary.startswith("reused")
    assert (tmp_path / "work" / "pseudonymisation" / "ttp" / "ehr" / "token_map.parquet").is_file()
    assert not list((tmp_path / "work").rglob("*.partial"))
    # The practice the docs recommend: the fallback's encodings keyed for this linkage (a label per
    # linkage, the same at both suppliers), and the linkage report shows the cascade and who links.
    pseudo = tmp_path / "work" / "pseudonymisation"
    labels = {json.loads((pseudo / s / "for_ttp" / "manifest.json").read_text())["encoding_linkage"]
              for s in ("ehr", "claims")}
    assert labels == {f"demo-{TINY.preset}-{TINY.seed}"}
    assert "linkage demo-tiny-7" in " ".join(s.summary for s in second.stages)
    report = json.loads((tmp_path / "work" / "linked" / "linkage_report.json").read_text())
    assert report["linked_records_by_method"]["bsn"] > 0
    assert sum(v for k, v in report["linked_records_by_method"].items() if k != "bsn") > 0
    assert {"age_band", "sex", "bsn_status"} <= set(report["who_links"])


def test_demo_command_exits_zero_and_writes_no_key_material(tmp_path: Path) -> None:
    work = tmp_path / "w"
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "preset=tiny", f"work={work}"],
        capture_output=True, text=True, cwd=tmp_path, env=env, check=False, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "study seed_study" in proc.stderr + proc.stdout
    assert (work / "study" / "care_use.parquet").is_file()
    # The demo ends with the study's release and its audit; the auditor's own command, given only
    # the release folder and the ledger, passes it too.
    assert "audit" in proc.stderr + proc.stdout and "PASS (verification mode)" in proc.stderr + proc.stdout
    (ledger,) = (work / "ledger").iterdir()
    audit = subprocess.run(
        [sys.executable, "-m", "audit", f"release={work / 'release'}", f"ledger={ledger}", f"report={tmp_path / 'audit.json'}"],
        capture_output=True, text=True, cwd=tmp_path, env=env, check=False, timeout=300,
    )
    assert audit.returncode == 0, audit.stdout[-2000:] + audit.stderr[-2000:]
    assert "verdict: PASS" in audit.stdout
    materials = [line.split()[0] for p in (work / "keys").iterdir() for line in p.read_text().splitlines()[1:]]
    assert materials and all(len(m) == 64 for m in materials)
    written = [p for p in tmp_path.rglob("*") if p.is_file() and "keys" not in p.parts and p.suffix in {".yaml", ".json", ".log", ".txt"}]
    assert written, "expected Hydra's config and the reports"
    for path in written:
        text = path.read_text(errors="replace")
        assert not any(m in text for m in materials), f"key material in {path.name}"


def test_demo_command_with_bad_override_fails_cleanly(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "preset=tiny", f"work={tmp_path / 'w'}", "preset.practices=0"],
        capture_output=True, text=True, cwd=tmp_path, check=False, timeout=120,
    )
    assert proc.returncode == 2
    assert "practices" in proc.stderr
    assert "Traceback" not in proc.stderr


def _steward_folder(root: Path) -> Path:
    """A folder the demo did not create: a steward's ledger and key beside other work."""
    folder = root / "steward"
    (folder / "ledger" / "population").mkdir(parents=True)
    (folder / "ledger" / "population" / "records.jsonl").write_text('{"release_id": "r-1"}\n')
    (folder / "keys").mkdir()
    (folder / "keys" / "network.key").write_text("not the demo's\n")
    (folder / "keys" / "network.key").chmod(0o600)
    return folder


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_demo_refuses_a_work_folder_it_did_not_create_and_changes_nothing(tmp_path: Path) -> None:
    # Issue 10, item 7: the demo deleted <work>/ledger and reused the keys it found there.
    steward = _steward_folder(tmp_path)
    before = _files(steward)
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "pfl-demo"), "preset=tiny", f"work={steward}"],
        capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "COLUMNS": "200"}, check=False,
        timeout=300,
    )
    assert proc.returncode == 9, proc.stderr[-2000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "did not write (no .pfl-demo marker)" in proc.stderr and "adopt=true" in proc.stderr
    # Nothing written at all, not even Hydra's record of the run (it was refused before Hydra started).
    assert _files(steward) == before
    assert sorted(p.name for p in steward.iterdir()) == ["keys", "ledger"]


def test_demo_refuses_a_quoted_work_folder_before_hydra_writes_into_it(tmp_path: Path) -> None:
    # Hydra unquotes work='FOLDER': the command-line check read the quotes as part of the name, saw
    # no such folder, and Hydra wrote its record of the run into the steward's folder before the refusal.
    steward = _steward_folder(tmp_path)
    before = _files(steward)
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "pfl-demo"), "preset=tiny", f"work='{steward}'"],
        capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "COLUMNS": "200"}, check=False,
        timeout=300,
    )
    assert proc.returncode == 9, proc.stderr[-2000:]
    assert "did not write (no .pfl-demo marker)" in proc.stderr
    assert _files(steward) == before
    assert sorted(p.name for p in steward.iterdir()) == ["keys", "ledger"]


def test_demo_checks_the_folder_it_will_use_when_work_starts_with_a_tilde(tmp_path: Path) -> None:
    # Hydra refuses an unquoted work=~/x (a malformed setting, exit 2); quoted, Hydra and the demo
    # read it as the folder "~/x" under the current folder, but the command-line check looked in the
    # home folder, so a steward's "./~/x" got Hydra's record of the run before the demo refused it.
    run, home = tmp_path / "run", tmp_path / "home"
    home.mkdir()
    steward = _steward_folder(run / "~")
    before = _files(steward)
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "pfl-demo"), "preset=tiny", "work='~/steward'"],
        capture_output=True, text=True, cwd=run, env={**os.environ, "COLUMNS": "200", "HOME": str(home)},
        check=False, timeout=300,
    )
    assert proc.returncode == 9, proc.stderr[-2000:]
    assert _files(steward) == before
    assert sorted(p.name for p in steward.iterdir()) == ["keys", "ledger"]
    assert list(home.iterdir()) == []


def test_demo_refuses_a_folder_holding_only_someone_elses_logs(tmp_path: Path) -> None:
    work = tmp_path / "app"
    (work / "logs").mkdir(parents=True)
    (work / "logs" / "service.log").write_text("someone else's log\n")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "pfl-demo"), "preset=tiny", f"work={work}"],
        capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "COLUMNS": "200"}, check=False,
        timeout=300,
    )
    assert proc.returncode == 9, proc.stderr[-2000:]
    assert "did not write (no .pfl-demo marker)" in proc.stderr
    assert sorted(str(p.relative_to(work)) for p in work.rglob("*")) == ["logs", "logs/service.log"]


def test_demo_adopts_a_folder_only_when_told_and_never_deletes_a_ledger(tmp_path: Path) -> None:
    steward = _steward_folder(tmp_path)
    (steward / "keys" / "network.key").unlink()  # the demo makes its own keys
    catalogue = load_catalogue(DEFAULT_CATALOGUE)
    first = run_demo(TINY, catalogue, steward, max_quarantine_share=0.01, adopt=True)
    assert (steward / ".pfl-demo").is_file()
    # The extracts were new: the ledgers of what was there stay where they were, untouched.
    assert (steward / "ledger" / "population" / "records.jsonl").read_text() == '{"release_id": "r-1"}\n'
    assert not list(steward.glob("ledger.*"))
    # A marked folder needs no adopt=true the next time.
    second = run_demo(TINY, catalogue, steward, max_quarantine_share=0.01)
    assert second.stages[0].summary.startswith("reused")


def test_demo_keeps_one_ledger_per_population_whatever_the_study(tmp_path: Path) -> None:
    # Issue 11, item 4: a second study over the same extracts is checked against the first one's
    # release, although the demo reruns the supplier steps (new random tokens, new batch ids).
    raw = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "study" / "seed_study.yaml"))
    study = parse_study(raw, load_catalogue(ROOT / "conf" / "conditions" / "seed_study.yaml"))  # type: ignore[arg-type]
    catalogue = load_catalogue(DEFAULT_CATALOGUE)
    work = tmp_path / "work"
    run_demo(TINY, catalogue, work, max_quarantine_share=0.01, study=study)
    run_demo(TINY, catalogue, work, max_quarantine_share=0.01, study=replace(study, name="seed_study_again"))
    (ledger,) = (work / "ledger").iterdir()
    index = json.loads((ledger / "ledger.json").read_text())
    assert [e["study"] for e in index["releases"]] == ["seed_study", "seed_study_again"]
    assert json.loads((work / "release" / "manifest.json").read_text())["ledger"]["earlier_releases"] == 1
    population = json.loads((work / "study" / "manifest.json").read_text())["population"]
    assert index["population"] == population and ledger.name.replace("-", "") == population[:12]


def test_demo_refuses_a_malformed_linkage_label_before_touching_work(tmp_path: Path) -> None:
    work = tmp_path / "w"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "preset=tiny", f"work={work}", "linkage='2026 q4/..'"],
        capture_output=True, text=True, cwd=tmp_path, check=False, timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "linkage: expected a label" in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (work / "extracts").exists() and not (work / "keys").exists()  # only Hydra's log folder
