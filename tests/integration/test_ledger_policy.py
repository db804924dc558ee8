"""The steward's policy cannot be bent by whoever runs ``pfl-release`` (issue 10, item 1).

The policy of a population lives with its ledger: fixed by ``pfl-ledger init`` at or above the
engine's floor (T >= 10, margin >= 0.30), only tightened by ``pfl-ledger tighten`` (recorded).
Every trick below (overrides, appended keys, another config file or search path, a ledger edited
by hand) either is refused and publishes nothing, or yields a release at the ledger's policy:
never a release below the floor, and the manifest's policy is always the ledger's.
"""

from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path

import pytest
import yaml
from command_runner import assert_clean_failure, command_in_process
from study_builder import write_study

from disclosure import FLOOR, Policy
from release.errors import LedgerRefusal
from release.ledger import create_ledger, tighten_policy
from release.make import make_release
from extracts.errors import ConfigError, OutputExistsError

ROOT = Path(__file__).resolve().parents[2]
REGIONS = {"region": list("ABCD")}
COUNTS = [18, 2, 14, 19]


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_study(tmp_path_factory.mktemp("policy") / "study", COUNTS, strata=REGIONS)


def _loose_config(folder: Path, name: str) -> Path:
    """A release.yaml in another folder that sets a looser policy every way it could."""
    config = yaml.safe_load((ROOT / "conf" / "release" / "release.yaml").read_text())
    config["policy"] = {"threshold": 5, "margin": 0.0, "publish_zeros": True, "rounding": None,
                        "p_percent": 10.0, "dominance_n": 2, "dominance_k": 90.0}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(config))
    return folder


TRICKS = {
    "policy.threshold=5": ["policy.threshold=5"],
    "policy={threshold:5}": ["policy={threshold:5}"],
    "policy.threshold=1": ["policy.threshold=1"],
    "policy.margin=0": ["policy.margin=0"],
    "+policy.threshold=5": ["+policy.threshold=5"],
    "+policy={threshold:5,margin:0}": ["+policy={threshold:5,margin:0}"],
    "study_policy.threshold=5": ["study_policy.threshold=5"],
    "study_policy.margin=0": ["study_policy.margin=0"],
    "-cp DIR -cn release": ["-cp", "{loose}", "-cn", "release"],
    "--config-dir DIR --config-name X": ["--config-dir", "{loose}", "--config-name", "loose"],
    "--config-path DIR": ["--config-path", "{loose}"],
}


@pytest.fixture(scope="module")
def tricked(study: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """Every trick run once (in this process: ``command_in_process``), each on a ledger of its own
    at the default policy."""
    root = tmp_path_factory.mktemp("tricks")
    loose = _loose_config(root / "loose", "release")
    _loose_config(loose, "loose")

    def attempt(index: int, name: str) -> tuple:
        folder = root / f"t{index}"
        ledger = create_ledger(folder / "ledger", Policy()).path
        args = [a.replace("{loose}", str(loose)) for a in TRICKS[name]]
        proc = command_in_process("pfl-release", f"study={study}", f"out={folder / 'out'}", f"ledger={ledger}", *args,
                           cwd=folder / "cwd")
        return proc, folder

    return {name: attempt(i, name) for i, name in enumerate(TRICKS)}


@pytest.mark.parametrize("trick", sorted(TRICKS))
def test_no_override_or_config_path_gives_a_release_below_the_ledgers_policy(trick, tricked):
    proc, folder = tricked[trick]
    both = proc.stdout + proc.stderr
    assert "Traceback" not in both
    ledger = json.loads((folder / "ledger" / "ledger.json").read_text())
    if proc.returncode != 0:
        assert proc.returncode == 2, both[-2000:]
        assert not (folder / "out").exists()
        assert ledger["releases"] == []
        return
    manifest = json.loads((folder / "out" / "manifest.json").read_text())
    assert manifest["policy"]["threshold"] >= FLOOR.threshold and manifest["policy"]["margin"] >= FLOOR.margin
    assert manifest["policy_source"]["steward"] == ledger["policy"]
    assert [e["release_id"] for e in ledger["releases"]] == [manifest["release_id"]]


def test_make_release_takes_no_policy_but_the_ledgers():
    parameters = inspect.signature(make_release).parameters
    assert not {"steward", "policy"} & set(parameters)


@pytest.mark.parametrize("change", [{"threshold": 5}, {"threshold": 9}, {"margin": 0.0}, {"margin": 0.29},
                                    {"publish_zeros": True, "dominance_k": 95.0}])
def test_a_ledger_cannot_be_created_below_the_floor(tmp_path, change):
    with pytest.raises(ConfigError, match="below the engine's floor"):
        create_ledger(tmp_path / "ledger", Policy(**change))
    assert not (tmp_path / "ledger").exists()


@pytest.mark.parametrize("edit", [{"threshold": 5}, {"margin": 0.0}, {"threshold": 1, "margin": 0.1}])
def test_a_ledger_policy_edited_by_hand_below_the_floor_is_refused(study, tmp_path, edit):
    ledger = create_ledger(tmp_path / "ledger", Policy()).path
    index = json.loads((ledger / "ledger.json").read_text())
    index["policy"].update(edit)
    for item in index["policy_history"]:  # the history edited to match: the floor still holds
        item["policy"].update(edit)
    (ledger / "ledger.json").write_text(json.dumps(index))
    proc = command_in_process("pfl-release", f"study={study}", f"out={tmp_path / 'out'}", f"ledger={ledger}", cwd=tmp_path)
    assert_clean_failure(proc, 11, "below the engine's floor")
    assert not (tmp_path / "out").exists()
    with pytest.raises(LedgerRefusal, match="below the engine's floor"):
        make_release(study, tmp_path / "out", ledger=ledger)


def test_a_tightened_policy_is_recorded_applied_and_cannot_be_loosened_by_hand(study, tmp_path):
    ledger = create_ledger(tmp_path / "ledger", Policy()).path
    proc = command_in_process("pfl-ledger", "tighten", "--ledger", str(ledger), "--threshold", "15", "--reason",
                       "small municipalities", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    index = json.loads((ledger / "ledger.json").read_text())
    change = index["policy_history"][-1]
    assert change["action"] == "tightened" and change["reason"] == "small municipalities"
    assert change["old"]["threshold"] == 10 and change["new"]["threshold"] == 15 and change["time"]
    result = make_release(study, tmp_path / "out", ledger=ledger)
    assert result.policy.threshold == 15
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["policy"]["threshold"] == 15
    with pytest.raises(ConfigError, match="only be tightened"):
        tighten_policy(ledger, {"threshold": 12}, reason="looser")
    # Loosened by hand (above the floor, below the recorded history): refused.
    index = json.loads((ledger / "ledger.json").read_text())
    index["policy"]["threshold"] = 12
    (ledger / "ledger.json").write_text(json.dumps(index))
    with pytest.raises(LedgerRefusal, match="edited by hand"):
        make_release(study, tmp_path / "out2", ledger=ledger)
    # History rewritten too: still looser than the policy the earlier release was made under.
    index["policy_history"] = index["policy_history"][:1]
    index["policy_history"][0]["policy"]["threshold"] = 12
    (ledger / "ledger.json").write_text(json.dumps(index))
    with pytest.raises(LedgerRefusal, match="looser than one it had before"):
        make_release(study, tmp_path / "out2", ledger=ledger)
    assert not (tmp_path / "out2").exists()


def test_a_release_into_a_folder_that_is_no_ledger_is_refused_and_creates_nothing(study, tmp_path):
    proc = command_in_process("pfl-release", f"study={study}", f"out={tmp_path / 'out'}", f"ledger={tmp_path / 'none'}",
                       cwd=tmp_path)
    assert_clean_failure(proc, 11, f"pfl-ledger init --ledger {tmp_path / 'none'}")
    assert not (tmp_path / "none").exists() and not (tmp_path / "out").exists()


def test_init_refuses_an_existing_ledger_and_a_folder_with_files(tmp_path):
    create_ledger(tmp_path / "ledger", Policy())
    with pytest.raises(OutputExistsError, match="a release ledger exists"):
        create_ledger(tmp_path / "ledger", Policy(threshold=20))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(OutputExistsError, match="not an empty folder"):
        create_ledger(tmp_path / "other", Policy())
    assert (tmp_path / "ledger").stat().st_mode & 0o077 == 0  # true values: the steward's eyes only


def test_a_study_of_another_population_is_refused_by_the_ledger(study, tmp_path):
    ledger = create_ledger(tmp_path / "ledger", Policy()).path
    make_release(study, tmp_path / "r1", ledger=ledger)
    other = write_study(tmp_path / "other", COUNTS, strata=REGIONS, population="another-population")
    with pytest.raises(LedgerRefusal, match="another population") as refused:
        make_release(other, tmp_path / "r2", ledger=ledger)
    assert refused.value.exit_code == 11
    assert not (tmp_path / "r2").exists()
    unnamed = tmp_path / "unnamed"
    shutil.copytree(study, unnamed)
    manifest = json.loads((unnamed / "manifest.json").read_text())
    del manifest["population"]
    (unnamed / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(LedgerRefusal, match="does not say which population"):
        make_release(unnamed, tmp_path / "r3", ledger=ledger)
    assert [e["release_id"] for e in json.loads((ledger / "ledger.json").read_text())["releases"]] == [
        json.loads((tmp_path / "r1" / "manifest.json").read_text())["release_id"]]
