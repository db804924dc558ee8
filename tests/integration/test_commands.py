"""Every command as a user meets it: --help, and each class of user error (issue 6, item 3).

The commands are discovered from ``[project.scripts]`` in pyproject.toml, so a new command is
covered the day it is added: its ``--help`` must say what it does, its required settings, an
example and the exit codes, and :data:`CASES` must list the user errors it can meet (a test
fails until it does). Each error case runs the command and asserts the documented exit code, a
one-paragraph message naming what is wrong, no traceback, and no output folder left behind: in
this process, through the console script's own function (``command_runner.command_in_process``:
a new interpreter per case spent a second each importing polars and Hydra), and for one case of
each command (:data:`INSTALLED`) also as the installed command in a subprocess, which must say
exactly what the in-process run said. ``docs/exit-codes.md`` is checked against the code here too.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import pkgutil
import re
import shutil
import tomllib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from subprocess import CompletedProcess
from typing import TypeVar

import polars as pl
import pytest
import yaml
from command_runner import assert_clean_failure, command_in_process, run_command
from omegaconf import OmegaConf

from cohort.config import parse_study
from cohort.output import population_fingerprint, write_study
from cohort.study import run_study
from commands.scripts import TARGETS
from extracts.cli import EXIT_CODES
from extracts.codelists import load_catalogue
from extracts.errors import EngineError
from extracts.generator.run import GenerationResult
from linkage.link import link
from pseudonymisation.keys import generate_key
from pseudonymisation.supplier import run_supplier_step
from pseudonymisation.ttp import run_ttp_step

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
T = TypeVar("T")
# Each console script and the function that runs it: pyproject.toml points every script at the
# light entry module commands.scripts, whose TARGETS names the command's own module.
SCRIPTS: dict[str, str] = {
    name: TARGETS[name][0]
    for name in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
}
ENGINE_PACKAGES = ("extracts", "pseudonymisation", "linkage", "cohort", "disclosure", "release", "pipeline")


# --- the inputs every case draws on ---------------------------------------------------------------


@dataclass(frozen=True)
class World:
    """Real inputs and outputs of every stage on the tiny extracts, plus broken variants."""

    extracts: Path
    keys: Path
    suppliers: Path
    ttp: Path
    linked: Path
    garbage: Path
    broken: Path
    exists: Path
    missing: Path
    study: Path
    release: Path
    tampered: Path
    bad_ledger: Path
    ledger: Path
    floor_ledger: Path
    spare_ledger: Path
    other_study: Path

    def fill(self, arg: str, out: Path) -> str:
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return arg.format(**fields, out=out)


def _copy_ehr(extracts: Path, to: Path) -> Path:
    shutil.copytree(extracts / "ehr", to)
    return to


@pytest.fixture(scope="module")
def world(tiny_extracts: GenerationResult, tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("commands")
    keys = root / "keys"
    network = generate_key(keys / "network.key", "network")
    ttp_key = generate_key(keys / "ttp.key", "ttp")
    (keys / "open.key").write_text((keys / "network.key").read_text())
    (keys / "open.key").chmod(0o644)
    (keys / "malformed.key").write_text("not a key\n")
    (keys / "malformed.key").chmod(0o600)
    extracts = tiny_extracts.out
    suppliers = root / "suppliers"
    for supplier in ("ehr", "claims"):
        run_supplier_step(extracts / supplier, supplier, network, suppliers / supplier)
    run_ttp_step({s: suppliers / s / "for_ttp" for s in ("ehr", "claims")}, ttp_key, "p", root / "ttp")
    link({s: suppliers / s / "for_research" for s in ("ehr", "claims")},
         {s: root / "ttp" / s for s in ("ehr", "claims")}, root / "linked", project="p")
    garbage = _copy_ehr(extracts, root / "garbage")
    (garbage / "patients.parquet").write_bytes(b"PAR1" + os.urandom(2000))
    broken = _copy_ehr(extracts, root / "broken")
    pl.read_parquet(broken / "patients.parquet").drop("sex").write_parquet(broken / "patients.parquet")
    (root / "exists").mkdir()
    (root / "exists" / "report.html").write_text("an earlier report")
    # A study folder, and a release of it made by the command (its API is the command).
    study = root / "study"
    raw = OmegaConf.to_container(OmegaConf.load(CONF / "study" / "seed_study.yaml"))
    config = parse_study(raw, load_catalogue(CONF / "conditions" / "seed_study.yaml"))  # type: ignore[arg-type]
    write_study(run_study(root / "linked", config), study, config,
                linked_manifest=json.loads((root / "linked" / "manifest.json").read_text()),
                population=population_fingerprint(root / "linked"))
    # Ledgers as the data steward makes them (pfl-ledger init); one edited by hand below the floor.
    for name in ("ledger", "floor_ledger", "spare_ledger"):
        made = command_in_process("pfl-ledger", "init", "--ledger", str(root / name), cwd=root / "cwd")
        assert made.returncode == 0, made.stderr[-2000:]
    index = json.loads((root / "floor_ledger" / "ledger.json").read_text())
    index["policy"]["threshold"] = 5
    (root / "floor_ledger" / "ledger.json").write_text(json.dumps(index))
    made = command_in_process("pfl-release", f"study={study}", f"out={root / 'release'}",
                       f"ledger={root / 'ledger'}", cwd=root / "cwd")
    assert made.returncode == 0, made.stderr[-2000:]
    tampered = root / "tampered"
    shutil.copytree(root / "release", tampered)
    csv = tampered / "prevalence.csv"
    csv.write_text(csv.read_text().replace("0", "1", 1))  # a published value changed afterwards
    bad_ledger = root / "bad_ledger"
    bad_ledger.mkdir()
    (bad_ledger / "ledger.json").write_text("not json")
    other_study = root / "other_study"  # the same study over another population
    shutil.copytree(study, other_study)
    manifest = json.loads((other_study / "manifest.json").read_text())
    (other_study / "manifest.json").write_text(json.dumps({**manifest, "population": "0" * 64}))
    return World(extracts, keys, suppliers, root / "ttp", root / "linked", garbage, broken,
                 root / "exists", root / "does-not-exist", study, root / "release", tampered,
                 bad_ledger, root / "ledger", root / "floor_ledger", root / "spare_ledger", other_study)


# --- the user errors of every command -------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One user error: the arguments (``{name}`` fields of :class:`World`, ``{out}``), the exit
    code and a fragment the message must contain."""

    command: str
    error: str
    args: tuple[str, ...]
    code: int
    says: str
    env: tuple[tuple[str, str], ...] = ()
    verdict: bool = False  # pfl-audit's "fails the audit": a report on stdout and a JSON file

    @property
    def id(self) -> str:
        return f"{self.command}: {self.error}"


_SUP = ("supplier=ehr", "extract={extracts}/ehr", "out={out}", "network_key={keys}/network.key")
_TTP = ("project=p", "out={out}", "ttp_key={keys}/ttp.key", "+inputs.ehr={suppliers}/ehr/for_ttp",
        "+inputs.claims={suppliers}/claims/for_ttp")
_LINK = ("out={out}", "project=p", "content.ehr={suppliers}/ehr/for_research",
         "content.claims={suppliers}/claims/for_research", "token_maps.ehr={ttp}/ehr",
         "token_maps.claims={ttp}/claims")
_STUDY = ("linked={linked}", "out={out}")
_RELEASE = ("study={study}", "out={out}", "ledger={ledger}")


def _with(base: tuple[str, ...], **changes: str) -> tuple[str, ...]:
    """``base`` with settings replaced (``key=value``) or added."""
    keys = {a.split("=", 1)[0].lstrip("+"): a for a in base}
    for key, value in changes.items():
        key = key.replace("__", ".")
        prefix = "+" if keys.get(key, "").startswith("+") else ""
        keys[key] = f"{prefix}{key}={value}"
    return tuple(keys.values())


CASES = [
    Case("pfl-generate", "unknown setting", ("preset=tiny", "out={out}", "nosuch=1"), 2, "nosuch"),
    Case("pfl-generate", "unknown preset", ("preset=nosuch", "out={out}"), 2, "preset/nosuch"),
    Case("pfl-generate", "invalid setting", ("preset=tiny", "out={out}", "preset.practices=0"), 2,
         "practices"),
    Case("pfl-generate", "output exists", ("preset=tiny", "out={exists}"), 9, "exists"),
    Case("pfl-generate", "overwrite neither true nor false", ("preset=tiny", "out={exists}", "overwrite=maybe"), 2,
         "overwrite: expected true or false"),
    Case("pfl-generate", "memory below one block", ("preset=tiny", "out={out}", "memory_gb=0.5"), 2,
         "memory_gb=0.5 is below"),
    Case("pfl-generate", "unknown executor", ("preset=tiny", "out={out}", "executor=nosuch"), 2,
         "executor must be one of"),
    Case("pfl-validate", "missing arguments", (), 2, "required"),
    Case("pfl-validate", "unknown supplier", ("{extracts}/ehr", "--supplier", "gp"), 2, "supplier"),
    Case("pfl-validate", "missing extract", ("{missing}", "--supplier", "ehr"), 3, "does not exist"),
    # Validation lists every problem of an extract at once: an unreadable file is one of them.
    Case("pfl-validate", "unreadable file", ("{garbage}", "--supplier", "ehr"), 5,
         "patients.parquet: not a readable Parquet file"),
    Case("pfl-validate", "contract broken", ("{broken}", "--supplier", "ehr"), 5,
         "patients.parquet, column 'sex': missing"),
    Case("pfl-keygen", "missing arguments", (), 2, "required"),
    Case("pfl-keygen", "unknown role", ("--role", "admin", "--out", "{out}"), 2, "role"),
    Case("pfl-keygen", "key file exists", ("--role", "ttp", "--out", "{keys}/ttp.key"), 6, "exists"),
    Case("pfl-supplier", "missing settings", (), 2, "missing setting(s): supplier, extract, out"),
    Case("pfl-supplier", "invalid supplier", _with(_SUP, supplier="gp"), 2, "supplier"),
    Case("pfl-supplier", "missing extract", _with(_SUP, extract="{missing}"), 3, "does not exist"),
    Case("pfl-supplier", "unreadable file", _with(_SUP, extract="{garbage}"), 5,
         "not a readable Parquet file"),
    Case("pfl-supplier", "contract broken", _with(_SUP, extract="{broken}"), 5, "column 'sex'"),
    Case("pfl-supplier", "key file missing", _with(_SUP, network_key="{missing}/network.key"), 6,
         "not found"),
    Case("pfl-supplier", "key readable by others", _with(_SUP, network_key="{keys}/open.key"), 6,
         "readable by others"),
    Case("pfl-supplier", "key of the wrong role", _with(_SUP, network_key="{keys}/ttp.key"), 6,
         "a ttp key where a network key is needed"),
    Case("pfl-supplier", "malformed key file", _with(_SUP, network_key="{keys}/malformed.key"), 6,
         "not a key file"),
    Case("pfl-supplier", "key variable unset", _with(_SUP, network_key="env:PFL_TEST_UNSET"), 6,
         "not set"),
    Case("pfl-supplier", "output exists", _with(_SUP, out="{exists}"), 9, "exists"),
    Case("pfl-supplier", "overwrite neither true nor false", _with(_SUP, out="{exists}", overwrite="no"), 2,
         "overwrite: expected true or false"),
    Case("pfl-ttp", "missing settings", (), 2, "missing setting(s): project, out"),
    Case("pfl-ttp", "no inputs", _TTP[:3], 2, "inputs"),
    Case("pfl-ttp", "input folder missing", _with(_TTP, inputs__ehr="{missing}"), 3,
         "no such folder; expected a supplier's for_ttp folder"),
    Case("pfl-ttp", "key of the wrong role", _with(_TTP, ttp_key="{keys}/network.key"), 6,
         "a network key where a ttp key is needed"),
    Case("pfl-ttp", "unexpected network key", (*_TTP, "expected_network_key_id=00000000"), 7,
         "expected 00000000"),
    Case("pfl-ttp", "output exists", _with(_TTP, out="{exists}"), 9, "exists"),
    Case("pfl-link", "missing settings", (), 2,
         "missing setting(s): out, project, content.ehr, content.claims, token_maps.ehr, token_maps.claims"),
    Case("pfl-link", "content folder missing", _with(_LINK, content__ehr="{missing}"), 3,
         "no such folder"),
    Case("pfl-link", "token map of another supplier", _with(_LINK, token_maps__ehr="{ttp}/claims"),
         8, "not both from supplier 'ehr'"),
    Case("pfl-link", "output exists", _with(_LINK, out="{exists}"), 9, "exists"),
    Case("pfl-link", "overwrite neither true nor false", _with(_LINK, out="{exists}", overwrite="maybe"), 2,
         "overwrite: expected true or false"),
    Case("pfl-study", "missing settings", (), 2, "missing setting(s): linked, out"),
    Case("pfl-study", "unknown study", ("study=nosuch", *_STUDY), 2, "study/nosuch"),
    Case("pfl-study", "year outside the extracts", (*_STUDY, "study.reference_years=[2010]"), 2,
         "reference_years"),
    Case("pfl-study", "schema 2: window ends before it starts",
         ("study=diabetes_incidence_2021", "study.criteria.5.window.days=[-1,-1825]", *_STUDY), 2,
         "criteria[5].window.days: the window ends (-1825) before it starts (-1); expected end >= start"),
    Case("pfl-study", "schema 2: year outside the extracts", ("study=seed_study_v2", "study.cohort.years=[2010]", *_STUDY),
         2, "cohort.years"),
    Case("pfl-study", "linked folder missing", _with(_STUDY, linked="{missing}"), 3,
         "not a linked folder"),
    Case("pfl-study", "output exists", _with(_STUDY, out="{exists}"), 9, "exists"),
    Case("pfl-study", "overwrite neither true nor false", _with(_STUDY, out="{exists}", overwrite="1"), 2,
         "overwrite: expected true or false"),
    Case("pfl-release", "missing settings", (), 2, "missing setting(s): study, out, ledger"),
    Case("pfl-release", "looser study policy", (*_RELEASE, "study_policy.threshold=5"), 2,
         "stricter, never looser"),
    Case("pfl-release", "study folder missing", _with(_RELEASE, study="{missing}"), 3,
         "not a study folder"),
    Case("pfl-release", "not a study folder", _with(_RELEASE, study="{linked}"), 4,
         "not the manifest of a study folder"),
    Case("pfl-release", "output exists", _with(_RELEASE, out="{exists}"), 9, "exists"),
    Case("pfl-release", "ledger unreadable", _with(_RELEASE, ledger="{bad_ledger}"), 11,
         "ledger"),
    Case("pfl-release", "no ledger at the folder", _with(_RELEASE, ledger="{missing}"), 11,
         "pfl-ledger init"),
    Case("pfl-release", "policy on the command line", (*_RELEASE, "policy.threshold=5"), 2,
         "policy"),
    Case("pfl-release", "ledger policy edited below the floor", _with(_RELEASE, ledger="{floor_ledger}"),
         11, "below the engine's floor"),
    Case("pfl-release", "study of another population", _with(_RELEASE, study="{other_study}"), 11,
         "another population"),
    Case("pfl-ledger", "missing arguments", (), 2, "required"),
    Case("pfl-ledger", "policy below the floor", ("init", "--ledger", "{out}", "--threshold", "5"), 2,
         "below the engine's floor"),
    Case("pfl-ledger", "ledger exists", ("init", "--ledger", "{ledger}"), 9, "exists"),
    Case("pfl-ledger", "looser policy", ("tighten", "--ledger", "{spare_ledger}", "--margin", "0.1",
                                         "--reason", "test"), 2, "only be tightened"),
    Case("pfl-ledger", "tighten without a reason", ("tighten", "--ledger", "{spare_ledger}",
                                                    "--threshold", "15"), 2, "required"),
    Case("pfl-ledger", "no ledger at the folder", ("show", "--ledger", "{missing}"), 11,
         "pfl-ledger init"),
    Case("pfl-audit", "missing settings", (), 2, "missing setting(s): release"),
    Case("pfl-audit", "unknown setting", ("release={release}", "nosuch=1"), 2, "nosuch"),
    Case("pfl-audit", "release folder missing", ("release={missing}", "report={out}"), 3,
         "not a release"),
    Case("pfl-audit", "not a release", ("release={linked}", "report={out}"), 4,
         "not a release manifest"),
    Case("pfl-audit", "release changed after it was made", ("release={tampered}", "report={out}"),
         1, "checksum", verdict=True),
    Case("pfl-report", "missing settings", (), 2, "missing setting(s): release, out"),
    Case("pfl-report", "unknown setting", ("release={release}", "out={out}", "nosuch=1"), 2,
         "nosuch"),
    Case("pfl-report", "release folder missing", ("release={missing}", "out={out}"), 3,
         "not a release folder"),
    Case("pfl-report", "not a release", ("release={linked}", "out={out}"), 4,
         "not a release manifest"),
    Case("pfl-report", "release changed after it was made", ("release={tampered}", "out={out}"), 1,
         "differ from the manifest's SHA-256"),
    Case("pfl-report", "output exists", ("release={release}", "out={exists}/report.html"), 9,
         "exists"),
    Case("pfl-demo", "unknown setting", ("nosuch=1",), 2, "nosuch"),
    Case("pfl-demo", "invalid setting", ("preset=tiny", "work={out}", "preset.practices=0"), 2,
         "practices"),
]


# One case of each command also run as the installed command, in a subprocess: the console
# script is installed and ends with the exit code and message of its function run in process.
INSTALLED = {
    "pfl-generate": "output exists",
    "pfl-validate": "contract broken",
    "pfl-keygen": "key file exists",
    "pfl-supplier": "output exists",
    "pfl-ttp": "output exists",
    "pfl-link": "output exists",
    "pfl-study": "output exists",
    "pfl-release": "output exists",
    "pfl-ledger": "ledger exists",
    "pfl-audit": "release changed after it was made",
    "pfl-report": "output exists",
    "pfl-demo": "invalid setting",
}


def test_every_command_has_its_user_errors_listed() -> None:
    assert sorted({c.command for c in CASES}) == sorted(SCRIPTS), (
        "add the user errors of each new command to CASES"
    )
    assert sorted(INSTALLED) == sorted(SCRIPTS), "name one case of each command in INSTALLED"
    assert all(any(c.command == command and c.error == error for c in CASES) for command, error in INSTALLED.items())


def _in_parallel(jobs: dict[str, Callable[[], T]]) -> dict[str, T]:
    """Run independent subprocess jobs on every core: each command spends a second starting."""
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 2)) as pool:
        futures = {key: pool.submit(job) for key, job in jobs.items()}
        return {key: future.result() for key, future in futures.items()}


Outcome = tuple[CompletedProcess[str], Path]


def _run_case(run: Callable[..., CompletedProcess[str]], world: World, case: Case, folder: Path) -> Outcome:
    folder.mkdir()
    args = [world.fill(a, folder / "out") for a in case.args]
    return run(case.command, *args, cwd=folder / "cwd", env=dict(case.env)), folder


@pytest.fixture(scope="module")
def outcomes(world: World, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Every case run once in this process (one after the other), with the folder it ran in."""
    root = tmp_path_factory.mktemp("cases")
    return {case.id: _run_case(command_in_process, world, case, root / f"case{i}") for i, case in enumerate(CASES)}


@pytest.fixture(scope="module")
def installed(world: World, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """The cases of :data:`INSTALLED` run as the installed commands (in parallel), by command."""
    root = tmp_path_factory.mktemp("installed")
    cases = {c.command: c for c in CASES if INSTALLED[c.command] == c.error}
    return _in_parallel({command: partial(_run_case, run_command, world, case, root / f"case{i}")
                         for i, (command, case) in enumerate(sorted(cases.items()))})


def _check_user_error(case: Case, proc: CompletedProcess[str], folder: Path) -> None:
    out = folder / "out"
    assert case.code in exit_codes_of(case.command)
    if case.verdict:  # not an error: the audit's verdict, per table, and its JSON report
        assert proc.returncode == case.code, proc.stderr[-2000:]
        assert "Traceback" not in proc.stdout + proc.stderr
        assert "verdict: FAIL" in proc.stdout and case.says in proc.stdout
        assert json.loads(out.read_text())
        return
    assert_clean_failure(proc, case.code, case.says)
    # Nothing that looks like an output: no folder, no partial folder left behind (the demo
    # keeps Hydra's record of the run in <work>/logs, and only that).
    assert sorted(p.name for p in folder.iterdir()) in (["cwd"], ["cwd", "out"])
    if out.exists():
        assert case.command == "pfl-demo" and [p.name for p in out.iterdir()] == ["logs"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_user_error_exits_with_its_code_and_a_message_without_traceback(
    case: Case, outcomes: dict[str, Outcome]
) -> None:
    _check_user_error(case, *outcomes[case.id])


def _as_said(proc: CompletedProcess[str], folder: Path) -> tuple[int, str, str]:
    """Exit code, stdout and stderr, with the case's own folder and the time taken named alike."""

    def alike(text: str) -> str:
        return re.sub(r"\bin \d+(\.\d+)? s\b", "in <time> s", text.replace(str(folder), "<case>"))

    return proc.returncode, alike(proc.stdout), alike(proc.stderr)


@pytest.mark.parametrize("command", sorted(INSTALLED))
def test_installed_command_says_what_its_function_says_in_process(
    command: str, installed: dict[str, Outcome], outcomes: dict[str, Outcome]
) -> None:
    (case,) = [c for c in CASES if c.command == command and c.error == INSTALLED[command]]
    proc, folder = installed[command]
    _check_user_error(case, proc, folder)
    assert _as_said(proc, folder) == _as_said(*outcomes[case.id])


# --- --help ---------------------------------------------------------------------------------------


def exit_codes_of(command: str) -> dict[int, tuple[str, str]]:
    """The exit-code table a command documents: its module's own (pfl-audit), else the engine's."""
    module = importlib.import_module(SCRIPTS[command].split(":")[0])
    return getattr(module, "EXIT_CODES", EXIT_CODES)


_CONFIG_HEADER = "== Configuration with your settings =="


@pytest.fixture(scope="module")
def helps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CompletedProcess[str]]:
    """Each command's --help, in this process (the installed commands: :data:`INSTALLED`)."""
    cwd = tmp_path_factory.mktemp("help")
    return {c: command_in_process(c, "--help", cwd=cwd) for c in SCRIPTS}


@pytest.mark.parametrize("command", sorted(SCRIPTS))
def test_help_says_what_the_command_does_its_settings_an_example_and_the_exit_codes(
    command: str, helps: dict[str, CompletedProcess[str]]
) -> None:
    proc = helps[command]
    text = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in text + proc.stderr
    assert command in text
    assert re.search(r"^\s*example", text, re.IGNORECASE | re.MULTILINE), text
    for code, (name, _) in exit_codes_of(command).items():
        assert re.search(rf"^\s*{code}\s+{re.escape(name)}:", text, re.MULTILINE), (code, name)
    described = text.split(_CONFIG_HEADER, 1)[0]
    argparse = text.lstrip().startswith("usage:")  # pfl-validate, pfl-keygen: options
    if not argparse:
        assert described.lstrip().startswith(f"{command}:"), "first line: what the command does"
    # Every required setting is explained: those the command names when they are missing...
    required = [k.strip() for c in CASES if c.command == command and c.error == "missing settings"
                for k in c.says.split(":", 1)[1].split(",")]
    # ...and, for the Hydra commands, every ??? of the configuration printed at the end.
    module = importlib.import_module(SCRIPTS[command].split(":")[0])
    if not argparse and "hydra.main" in inspect.getsource(module):
        assert _CONFIG_HEADER in text, "help must end with the configuration (hydra.help.template)"
        config = yaml.safe_load(text.split(_CONFIG_HEADER, 1)[1]) or {}
        required += [k for k, v in config.items() if v == "???"]
    for key in required:
        assert re.search(rf"(^|\s)-*{re.escape(key)}[.= ]", described, re.MULTILINE), (
            f"{command} --help does not explain {key}"
        )


# --- the exit-code table --------------------------------------------------------------------------


def engine_errors() -> dict[int, list[str]]:
    """Every EngineError subclass of the engine's packages, by exit code (module.Class)."""
    for package in ENGINE_PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, f"{package}."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)
    found: dict[int, list[str]] = {}
    todo = [EngineError]
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__module__.split(".")[0] in ENGINE_PACKAGES:
            found.setdefault(cls.exit_code, []).append(f"{cls.__module__}.{cls.__qualname__}")
    return {code: sorted(names) for code, names in sorted(found.items())}


def exit_code_markdown() -> str:
    """The table of docs/exit-codes.md, as the code defines it."""
    classes = engine_errors()
    rows = ["| code | name | when | raised as |", "|---:|---|---|---|"]
    for code, (name, when) in EXIT_CODES.items():
        raised = ", ".join(f"`{c}`" for c in classes.get(code, [])) or "-"
        rows.append(f"| {code} | {name} | {when} | {raised} |")
    return "\n".join(rows)


def audit_exit_code_markdown() -> str:
    """The table of pfl-audit's exit codes in docs/exit-codes.md (the auditor's own)."""
    rows = ["| code | name | when |", "|---:|---|---|"]
    rows += [f"| {code} | {name} | {when} |" for code, (name, when) in exit_codes_of("pfl-audit").items()]
    return "\n".join(rows)


DOC_TABLES = {"exit-codes": exit_code_markdown, "audit-exit-codes": audit_exit_code_markdown}


def _doc_table(doc: str, name: str) -> str:
    begin, end = f"<!-- {name}: begin -->\n", f"\n<!-- {name}: end -->"
    assert begin in doc and end in doc, f"docs/exit-codes.md: markers of {name}"
    return doc.split(begin, 1)[1].split(end, 1)[0]


@pytest.mark.parametrize("command", sorted(SCRIPTS))
def test_a_command_with_its_own_exit_code_table_keeps_the_engine_names(command: str) -> None:
    # pfl-audit and pfl-report import nothing from the engine; a script still reads every
    # command's codes alike. Their words for "when" may differ; the codes' names may not.
    own = {code: name for code, (name, _) in exit_codes_of(command).items()}
    assert own == {code: EXIT_CODES[code][0] for code in own if code in EXIT_CODES}


def test_every_engine_error_has_a_documented_exit_code() -> None:
    unlisted = {code: names for code, names in engine_errors().items() if code not in EXIT_CODES}
    assert unlisted == {}, "add these exit codes to extracts.cli.EXIT_CODES"


@pytest.mark.parametrize("name", sorted(DOC_TABLES))
def test_exit_code_tables_in_the_docs_are_the_ones_in_the_code(name: str) -> None:
    doc = (ROOT / "docs" / "exit-codes.md").read_text()
    assert _doc_table(doc, name) == DOC_TABLES[name](), (
        "docs/exit-codes.md is stale: run PYTHONPATH=tests .venv/bin/python tests/integration/test_commands.py"
    )



if __name__ == "__main__":  # rewrite the tables of docs/exit-codes.md from the code
    doc_path = ROOT / "docs" / "exit-codes.md"
    doc = doc_path.read_text()
    for table_name, make in DOC_TABLES.items():
        doc = doc.replace(_doc_table(doc, table_name), make())
    doc_path.write_text(doc)
