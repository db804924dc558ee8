"""Every Hydra command refuses a bent command line before Hydra does anything (issue 10, items 1, 5).

An adversary (or a careless user) tries, on every command that parses its settings with Hydra:
other configuration files (``-cp``, ``-cn``, ``-cd``, ``hydra.searchpath``), Hydra's own
settings (where the log goes, what it holds), sweeps, added, force-added and deleted keys, a
config group moved to the top level, interpolations that read the environment, and keys given
by value. Each runs the console script's function as the installed script does (the hundreds
of cases in this process: ``command_runner.command_in_process``, which captures file
descriptors 1 and 2; the single cases as the installed command) and must end with the
documented exit code (2; 6 for key material), a message that says why, no traceback, nothing
written (no ``pfl-logs/``), and never the key's value. What stays allowed keeps working:
``--help``, ``+defects.NAME``, ``+inputs.SUPPLIER``, ``--config-dir`` with a study folder.
Hydra's own files, when a command runs, are owner-only; its outputs keep the user's umask.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import inspect
import re
import stat
import tomllib
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest
from command_runner import assert_clean_failure, command_in_process, run_command

from commands.scripts import TARGETS
from extracts.cli import _hydra_command
from extracts.command_line import HydraCommand
from pseudonymisation.keys import generate_key

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
HYDRA_COMMANDS = sorted(name for name, (_, config) in TARGETS.items() if config is not None)
# Fixed keys (32 bytes each, derived, not random: the test is the same on every run).
MATERIAL = hashlib.sha256(b"pfl test key material").digest()
HEX = MATERIAL.hex()


def _one_by_one(
    jobs: dict[str, Callable[[], CompletedProcess[str]]],
) -> dict[str, CompletedProcess[str]]:
    return {name: job() for name, job in jobs.items()}  # in this process: one at a time


def _written(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


# --- every console script, and every Hydra command's configuration ------------------------------


def test_every_console_script_starts_in_the_light_entry_module() -> None:
    assert sorted(SCRIPTS) == sorted(TARGETS)
    for name, target in SCRIPTS.items():
        assert target == f"commands.scripts:{name.removeprefix('pfl-')}"


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_the_entry_module_names_each_hydra_command_with_its_own_configuration(name: str) -> None:
    function, config = TARGETS[name]
    module_name, _, attribute = function.partition(":")
    module = importlib.import_module(module_name)
    runs = re.search(r"run_hydra\((\w+)\)", inspect.getsource(getattr(module, attribute)))
    if runs is None:
        assert config is None, f"{name} does not use Hydra"
        return
    assert config is not None, f"{name} uses Hydra: give its configuration in TARGETS"
    declared = _hydra_command(getattr(module, runs.group(1)))  # what @hydra.main was given
    expected = HydraCommand.named(config)
    assert (declared.config_dir, declared.config_name) == (expected.config_dir, expected.config_name)
    assert expected.file.is_file()


# --- tricks: refused with exit 2, a reason, nothing written ---------------------------------------


def _tricks(looser: Path) -> dict[str, tuple[list[str], str]]:
    """Name -> (arguments, what the message must say). ``looser``: a folder of configs."""
    d = str(looser)
    return {
        "-cp -cn": (["-cp", d, "-cn", "looser"], "-cp"),
        "--config-path": (["--config-path", d], "--config-path"),
        "--config-path=": ([f"--config-path={d}"], "--config-path"),
        "--config-name": (["--config-name", "looser"], "--config-name"),
        "--config-name=": (["--config-name=looser"], "--config-name"),
        "-cn": (["-cn", "looser"], "-cn"),
        "-cd": (["-cd", d], "-cd"),
        "--config-dir": (["--config-dir", d], "--config-dir"),
        "--config-dir=": ([f"--config-dir={d}"], "--config-dir"),
        "--config-d (abbreviated)": (["--config-d", d], "--config-d"),
        "hydra.searchpath": ([f"hydra.searchpath=[file://{d}]"], "hydra.searchpath"),
        "+hydra.searchpath": ([f"+hydra.searchpath=[file://{d}]"], "hydra.searchpath"),
        "hydra.run.dir": ([f"hydra.run.dir={d}/logs"], "hydra.run.dir"),
        "hydra.output_subdir": (["hydra.output_subdir=null"], "hydra.output_subdir"),
        "hydra.job.chdir": (["hydra.job.chdir=true"], "hydra.job.chdir"),
        "hydra/job_logging": (["hydra/job_logging=disabled"], "hydra/job_logging"),
        "hydra.verbose": (["hydra.verbose=true"], "hydra.verbose"),
        "+hydra.callbacks": (["+hydra.callbacks.x._target_=os.getcwd"], "hydra.callbacks"),
        "--multirun": (["--multirun", "seed=1,2"], "--multirun"),
        "-m": (["-m"], "-m"),
        "sweep": (["seed=1,2"], "no sweeps"),
        "--experimental-rerun": (["--experimental-rerun", f"{d}/config.pickle"], "--experimental-rerun"),
        "--shell-completion": (["--shell-completion"], "--shell-completion"),
        "+foo": (["+foo=1"], "not in the configuration"),
        "foo": (["foo=1"], "not in the configuration"),
        "unknown key given a mapping": (["nosuch={threshold:5}"], "not in the configuration"),
        "+policy.threshold": (["+policy.threshold=5"], "not in the configuration"),
        "+policy.x": (["+policy.x=1"], "not in the configuration"),
        "++foo": (["++foo=1"], "not in the configuration"),
        "++out": (["++out=x"], "not in the configuration"),
        "~key": (["~overwrite"], "cannot be deleted"),
        "group@_global_": (["conditions@_global_=seed_study"], "cannot be moved"),
        "interpolation": (["overwrite=${oc.env:HOME}"], "interpolations"),
    }


@pytest.fixture(scope="module")
def looser(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of configurations an adversary would load: every command's, with T = 1."""
    folder = tmp_path_factory.mktemp("looser")
    for name in HYDRA_COMMANDS:
        config = HydraCommand.named(TARGETS[name][1])  # type: ignore[arg-type]
        (folder / f"{config.config_name}.yaml").write_text("policy: {threshold: 1, margin: 0}\n")
    (folder / "looser.yaml").write_text("policy: {threshold: 1, margin: 0}\n")
    (folder / "hydra").mkdir()
    (folder / "hydra" / "config.yaml").write_text("run: {dir: /tmp}\n")
    return folder


@pytest.mark.parametrize("trick", list(_tricks(Path("/x"))))
@pytest.mark.parametrize("command", HYDRA_COMMANDS)
def test_a_bent_command_line_is_refused_before_hydra_writes_anything(
    command: str, trick: str, looser: Path, tmp_path: Path
) -> None:
    args, says = _tricks(looser)[trick]
    cwd = tmp_path / "cwd"
    proc = command_in_process(command, *args, cwd=cwd)
    assert_clean_failure(proc, 2, says)
    assert "nothing was run" in proc.stderr
    assert _written(cwd) == [], f"{command} {trick} wrote {_written(cwd)}"


# --- keys given by value: exit 6, named, never echoed, nothing written ---------------------------


def _key_forms(key_file: Path) -> dict[str, str]:
    """Every way a key can be pasted where a path belongs (the value of a setting)."""
    return {
        "hex": HEX,
        "HEX upper case": HEX.upper(),
        "key file content": key_file.read_text(),
        "header only": key_file.read_text().splitlines()[0],
        "base64": base64.b64encode(MATERIAL).decode(),
        "base64url unpadded": base64.urlsafe_b64encode(MATERIAL).decode().rstrip("="),
        "base32": base64.b32encode(MATERIAL).decode(),
        "hex in a path": f"/secure/{HEX}",
    }


_KEY_SETTINGS = {"pfl-supplier": "network_key", "pfl-ttp": "ttp_key"}


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "network.key"
    generate_key(path, "network")
    return path


@pytest.mark.parametrize("form", list(_key_forms(Path(__file__))))  # names only
@pytest.mark.parametrize("command", HYDRA_COMMANDS)
def test_a_key_given_by_value_is_refused_with_exit_6_and_never_echoed(
    command: str, form: str, key_file: Path, tmp_path: Path
) -> None:
    value = _key_forms(key_file)[form]
    setting = _KEY_SETTINGS.get(command, "out")  # any setting: the check reads every argument
    cwd = tmp_path / "cwd"
    proc = command_in_process(command, f"{setting}={value}", cwd=cwd)
    assert_clean_failure(proc, 6, f"{setting}: the value looks like key material")
    both = proc.stdout + proc.stderr
    for line in value.splitlines():  # not a fragment of the material: 12 characters or more
        chunks = {line[i : i + 12] for i in range(0, max(1, len(line) - 11))}
        assert not any(c in both for c in chunks if len(c) == 12 and c.strip("/ ")), form
    assert _written(cwd) == [], f"{command} {form} wrote {_written(cwd)}"


def test_a_key_in_an_added_input_is_refused_too(tmp_path: Path) -> None:
    proc = run_command("pfl-ttp", "project=p", "out=o", f"+inputs.ehr={HEX}", cwd=tmp_path)
    assert_clean_failure(proc, 6, "inputs.ehr: the value looks like key material")
    assert HEX[:12] not in proc.stderr
    assert _written(tmp_path) == []


def test_key_material_in_the_environment_is_not_echoed_as_a_missing_key_file(tmp_path: Path) -> None:
    # network_key=env:NAME where NAME holds the key's hex instead of a path or the key file:
    # the command line is clean, so the key reaches load_key, whose message must not echo it.
    extract = tmp_path / "extract"
    extract.mkdir()
    proc = run_command("pfl-supplier", "supplier=ehr", f"extract={extract}", "out=o",
                       "network_key=env:PFL_TEST_NETWORK_KEY", cwd=tmp_path / "run",
                       env={"PFL_TEST_NETWORK_KEY": HEX})
    assert_clean_failure(proc, 6, "network_key: key reference env:PFL_TEST_NETWORK_KEY")
    assert "not shown" in proc.stderr
    assert HEX[:12] not in proc.stdout + proc.stderr
    logs = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert logs, "Hydra's log is written for a run that passed the command-line check"
    assert not any(HEX[:12] in p.read_text() for p in logs)


def test_a_missing_key_file_is_named_with_its_setting(tmp_path: Path) -> None:
    proc = run_command("pfl-ttp", "project=p", "out=o", "+inputs.ehr=x", f"ttp_key={tmp_path}/none.key",
                       cwd=tmp_path / "run")
    assert_clean_failure(proc, 6, f"ttp_key: key file not found: {tmp_path}/none.key")


# --- what stays allowed ---------------------------------------------------------------------------


def test_help_and_the_documented_additions_still_work(tmp_path: Path) -> None:
    study_dir = tmp_path / "my-config" / "study"
    study_dir.mkdir(parents=True)
    (study_dir / "mine.yaml").write_text("name: mine\nreference_years: [2021]\n")
    jobs = {f"{c} --help": (lambda c=c: command_in_process(c, "--help", cwd=tmp_path / "help")) for c in HYDRA_COMMANDS}
    jobs["defects"] = lambda: command_in_process("pfl-generate", "+defects.bsn_missing=0.01", "--cfg", "job",
                                          cwd=tmp_path / "cfg")
    jobs["inputs"] = lambda: command_in_process("pfl-ttp", "+inputs.ehr=/in/ehr", "--cfg", "job", cwd=tmp_path / "cfg")
    jobs["config-dir"] = lambda: command_in_process("pfl-study", "--config-dir", str(tmp_path / "my-config"),
                                             "study=mine", "--cfg", "job", cwd=tmp_path / "cfg")
    done = _one_by_one(jobs)
    for name, proc in done.items():
        assert proc.returncode == 0, f"{name}: {proc.stderr[-800:]}"
    assert "bsn_missing: 0.01" in done["defects"].stdout
    assert "ehr: /in/ehr" in done["inputs"].stdout
    assert "name: mine" in done["config-dir"].stdout
    assert _written(tmp_path / "help") == [] and _written(tmp_path / "cfg") == []


@pytest.mark.parametrize("content", [
    "# @package _global_\nhydra:\n  run:\n    dir: /tmp/elsewhere\n",
    "defaults:\n  - /release/release@_here_\nname: evil\n",
    "hydra:\n  job:\n    chdir: true\nname: evil\n",
])
def test_a_config_dir_may_only_add_plain_files_to_the_commands_groups(tmp_path: Path, content: str) -> None:
    (tmp_path / "cfg" / "study").mkdir(parents=True)
    (tmp_path / "cfg" / "study" / "evil.yaml").write_text(content)
    proc = command_in_process("pfl-study", "--config-dir", str(tmp_path / "cfg"), "study=evil",
                       "linked=l", "out=o", cwd=tmp_path / "run")
    assert_clean_failure(proc, 2, "may not move its settings elsewhere")
    assert _written(tmp_path / "run") == []


# --- Hydra's files are owner-only; the command's outputs keep the user's umask --------------------


def test_hydras_log_folders_are_owner_only_and_outputs_keep_the_umask(tmp_path: Path) -> None:
    proc = run_command("pfl-generate", "preset=tiny", "out=extracts", cwd=tmp_path,
                       prefix=("sh", "-c", 'umask 022; exec "$0" "$@"'))
    assert proc.returncode == 0, proc.stderr[-2000:]
    logs = [tmp_path / "pfl-logs", *(tmp_path / "pfl-logs").rglob("*")]
    assert any(p.name == "config.yaml" for p in logs)
    for path in logs:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path.relative_to(tmp_path)}: {mode:o}"
    outputs = list((tmp_path / "extracts").rglob("*.parquet"))
    assert outputs
    assert {stat.S_IMODE(p.stat().st_mode) for p in outputs} == {0o644}


@pytest.mark.parametrize(("command", "args"), [
    ("pfl-study", ("linked=nolinked", "out=o", "study.name=../../../escaped")),
    ("pfl-supplier", ("supplier=../../../escaped", "extract=e", "out=o")),
    ("pfl-ttp", ("project=../../../escaped", "out=o", "+inputs.ehr=e")),
])
def test_a_setting_named_in_the_log_folder_cannot_move_the_log(command: str, args: tuple[str, ...],
                                                              tmp_path: Path) -> None:
    cwd = tmp_path / "a" / "b"
    proc = command_in_process(command, *args, cwd=cwd)
    assert proc.returncode not in (0, 70), proc.stderr[-2000:]  # refused by the command's body
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_dir() and "escaped" in p.name)
    assert [p.name for p in tmp_path.iterdir()] == ["a"]
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b"]
    assert [p.name for p in cwd.iterdir()] == ["pfl-logs"]
    for path in (cwd / "pfl-logs").iterdir():
        assert "/" not in path.name and not path.name.endswith("..")


# --- the executor group: the packaged executors only (issue 14) ----------------------------------


@pytest.mark.parametrize(("command", "args"), [
    ("pfl-study", ("linked=l", "out=o")),
    ("pfl-supplier", ("supplier=ehr", "extract=e", "out=o", "network_key=/none.key")),
])
@pytest.mark.parametrize("select", [True, False], ids=["selected", "present"])
def test_a_config_dir_cannot_add_an_executor(command: str, args: tuple[str, ...], select: bool,
                                             tmp_path: Path) -> None:
    """A hostile executor file (another scheduler address, options of its own) is refused."""
    (tmp_path / "cfg" / "executor").mkdir(parents=True)
    (tmp_path / "cfg" / "executor" / "evil.yaml").write_text("name: dask\naddress: tcp://203.0.113.9:8786\n")
    chosen = ("executor=evil",) if select else ()
    proc = command_in_process(command, "--config-dir", str(tmp_path / "cfg"), *chosen, *args, cwd=tmp_path / "run")
    assert_clean_failure(proc, 2, "executor")
    assert "nothing was run" in proc.stderr
    assert _written(tmp_path / "run") == []


@pytest.mark.parametrize("choice", ["evil", "../study/seed_study", "/etc/passwd", "dask/../local"])
def test_an_executor_that_is_not_packaged_is_refused(choice: str, tmp_path: Path) -> None:
    proc = command_in_process("pfl-link", f"executor={choice}", "ttp=t", "out=o", cwd=tmp_path / "run")
    assert_clean_failure(proc, 2, "executor must be one of dask, local, processes, spark")
    assert _written(tmp_path / "run") == []


def test_the_executors_and_their_options_are_accepted_on_every_stage_command(tmp_path: Path) -> None:
    settings = {"pfl-study": ("executor=dask", "executor.address=tcp://scheduler:8786"),
                "pfl-supplier": ("executor=spark", "executor.master=spark://master:7077"),
                "pfl-ttp": ("executor=processes", "executor.workers=2"),
                "pfl-link": ("executor=dask", "executor.workers=2"),
                "pfl-generate": ("executor=spark", "executor.workers=2"),
                "pfl-demo": ("executor=local",)}
    jobs = {c: (lambda c=c, s=s: command_in_process(c, *s, "--cfg", "job", cwd=tmp_path / "cfg")) for c, s in settings.items()}
    done = _one_by_one(jobs)
    for command, proc in done.items():
        assert proc.returncode == 0, f"{command}: {proc.stderr[-800:]}"
    assert "address: tcp://scheduler:8786" in done["pfl-study"].stdout
    assert "master: spark://master:7077" in done["pfl-supplier"].stdout
    assert "name: processes" in done["pfl-ttp"].stdout
    assert _written(tmp_path / "cfg") == []


@pytest.mark.parametrize(("args", "says"), [
    (("executor.address=tcp://scheduler:8786",), "executor.address is not an option of executor=local; it is one of executor=dask"),
    (("executor=spark", "executor.address=tcp://scheduler:8786"), "executor.address is not an option of executor=spark"),
    (("executor=dask", "executor.master=spark://m:7077"), "executor.master is not an option of executor=dask; it is one of executor=spark"),
])
def test_an_option_of_another_executor_names_the_executor_that_takes_it(args: tuple[str, ...], says: str,
                                                                        tmp_path: Path) -> None:
    proc = command_in_process("pfl-study", "linked=l", "out=o", *args, cwd=tmp_path / "run")
    assert_clean_failure(proc, 2, says)
    assert _written(tmp_path / "run") == []
