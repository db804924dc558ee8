"""What a Hydra command accepts on its command line, checked before Hydra does anything.

Hydra lets a command line change where configuration comes from (``-cp``, ``-cn``, ``-cd``,
``hydra.searchpath``), where the run's logs go and what they hold (``hydra.*``), add or delete
keys (``+key``, ``++key``, ``~key``), move a config group elsewhere (``group@package=``), pull
values from the environment (``${oc.env:...}``) and run a sweep (``-m``). The engine's commands
need none of that, and each is a way to bend a run: to load a looser configuration, to write a
key into the run's configuration dump, or to hide a setting from the log. So every argument is
checked against an allow-list (``docs/security-boundaries.md``):

- options: ``--help``/``-h``, ``--hydra-help``, ``--version``, ``--cfg``/``-c job|hydra|all``,
  ``--resolve``, ``--package``/``-p``, ``--info``/``-i`` (they print and run nothing), and
  ``--config-dir``/``-cd DIR`` only for a command whose configuration has open config groups
  (``study``, ``conditions``, ``preset``): DIR may add files to those groups and nothing else;
- closed config groups (``executor``: where the partitions run, and so where person-level data
  goes) take only their packaged files: ``executor=dask``, never a file a ``--config-dir`` adds;
  ``executor.KEY=`` must be an option of the executor chosen (the message names the one that
  takes it);
- overrides: ``key=value`` of a key in the configuration (an unknown top-level key is refused
  here, an unknown nested one by Hydra as it composes), a config group's option
  (``study=NAME``), and ``+parent.name=value`` only where ``parent`` is declared an open
  mapping (``{}``) in the command's own file (``+defects.bsn_missing=0.01``,
  ``+inputs.ehr=FOLDER``);
- no argument may hold key material (:mod:`extracts.key_material`): refused with exit 6,
  naming the setting, never the value.

A refusal exits 2 (6 for key material) before Hydra composes, prints or writes anything.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from extracts.errors import ConfigError, KeyMaterialError
from extracts.key_material import looks_like_key_material

__all__ = ["CONF_DIR", "HydraCommand", "check_before_start", "check_command_line"]

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"

# Options that print and run nothing; the value an option takes, when it takes one.
_PRINTING = {"--help": None, "-h": None, "--hydra-help": None, "--version": None,
             "--resolve": None, "--cfg": "job|hydra|all", "-c": "job|hydra|all",
             "--package": "PACKAGE", "-p": "PACKAGE"}
_INFO = ("--info", "-i")
_INFO_CHOICES = ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath")
_CONFIG_DIR = ("--config-dir", "-cd")
_WHY = {
    "--config-path": "the command's configuration comes from its own files only",
    "-cp": "the command's configuration comes from its own files only",
    "--config-name": "the command's configuration comes from its own files only",
    "-cn": "the command's configuration comes from its own files only",
    "--multirun": "a command runs once (no sweeps)",
    "-m": "a command runs once (no sweeps)",
    "--experimental-rerun": "a command runs from its settings, never from a saved run",
}
# Config groups whose options are the packaged files only: a folder of the user's cannot add one.
_CLOSED_GROUPS = {"executor": "where the partitions run (and person-level data goes) is one of the "
                              "packaged executors"}
_PACKAGE_DIRECTIVE = re.compile(r"^\s*#\s*@package", re.MULTILINE)
_TOP_LEVEL_KEY = re.compile(r"^(defaults|hydra)\s*:", re.MULTILINE)


@dataclass(frozen=True)
class HydraCommand:
    """A command's primary configuration file, as ``@hydra.main`` names it."""

    config_dir: Path
    config_name: str

    @classmethod
    def named(cls, config: str) -> HydraCommand:
        """The command whose primary configuration is ``conf/<config>.yaml``."""
        path = CONF_DIR / config
        return cls(path.parent, path.name)

    @property
    def file(self) -> Path:
        return self.config_dir / f"{self.config_name}.yaml"

    def _raw(self) -> dict:
        import yaml

        loaded = yaml.safe_load(self.file.read_text(encoding="utf-8"))
        return loaded if isinstance(loaded, dict) else {}

    def groups(self) -> set[str]:
        """The config groups its defaults list selects (``preset``, ``conditions``, ``study``)."""
        found = set()
        for entry in self._raw().get("defaults") or []:
            if isinstance(entry, dict):
                found |= {str(k).removeprefix("override ").strip("/") for k in entry}
        return {g for g in found if g and not g.startswith("hydra")}

    def open_groups(self) -> set[str]:
        """The config groups a ``--config-dir`` may add files to (not :data:`_CLOSED_GROUPS`)."""
        return self.groups() - set(_CLOSED_GROUPS)

    def default_option(self, group: str) -> str | None:
        """The option of ``group`` the defaults list selects."""
        for entry in self._raw().get("defaults") or []:
            if isinstance(entry, dict):
                for key, value in entry.items():
                    if str(key).removeprefix("override ").strip("/") == group:
                        return str(value)
        return None

    def packaged_options(self, group: str) -> list[str]:
        """The options of a config group in the command's own configuration folder."""
        return sorted(p.stem for p in (self.config_dir / group).glob("*.yaml"))

    def top_level_keys(self) -> set[str]:
        """The settings of its own file and its config groups: what an override may start with."""
        return {str(k) for k in self._raw() if k not in ("defaults", "hydra")} | self.groups()

    def open_mappings(self) -> set[str]:
        """Top-level settings declared ``{}``: a user adds their keys with ``+name.key=value``."""
        return {k for k, v in self._raw().items() if v == {} and k != "hydra"}


def check_command_line(argv: Sequence[str], command: HydraCommand) -> None:
    """Refuse, before Hydra runs, every argument outside the allow-list of the module docstring.

    Raises:
        KeyMaterialError: an argument holds key material (exit 6; the value is not shown).
        ConfigError: an option or override outside the allow-list (exit 2).
    """
    for position, arg in enumerate(argv, start=1):
        if looks_like_key_material(arg):
            raise KeyMaterialError(_key_message(arg, position))
    overrides = _check_options(argv, command)
    _check_overrides(overrides, command)


def check_before_start(argv: Sequence[str], config: str) -> None:
    """:func:`check_command_line` for a console script, before the command's module is loaded.

    A refusal prints ``error: ...`` and exits with its code (2 or 6) at once, without the
    second or so of imports. Anything unexpected is left to the same check in
    :func:`extracts.cli.run_hydra`, which reports it under :func:`extracts.cli.guarded`.
    """
    from extracts.errors import EngineError

    try:
        check_command_line(argv, HydraCommand.named(config))
    except EngineError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(exc.exit_code)
    except Exception:  # reported by run_hydra's guarded check
        return


def _key_message(arg: str, position: int) -> str:
    setting = arg.split("=", 1)[0].lstrip("+~") if "=" in arg else ""
    if not setting or looks_like_key_material(setting) or not re.fullmatch(r"[\w.@/-]+", setting):
        setting = f"argument {position}"
    return (f"{setting}: the value looks like key material (a key given by value); it is not "
            "shown and nothing was written. Name a key file by path or env:NAME")


def _check_options(argv: Sequence[str], command: HydraCommand) -> list[str]:
    """The overrides of ``argv``, after checking every option; raises on a refused option."""
    overrides: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("-"):
            overrides.append(arg)
            continue
        name, eq, value = arg.partition("=")
        if name in _PRINTING:
            takes = _PRINTING[name]
            if takes is None and eq:
                _refuse(f"option {name} takes no value")
            if takes is not None and not eq:
                if i >= len(args) or args[i].startswith("-"):
                    _refuse(f"option {name} needs a value ({takes})")
                i += 1  # its value: Hydra checks --cfg's choices; --package names a package
            continue
        if name in _INFO:
            if not eq and i < len(args) and args[i] in _INFO_CHOICES:
                i += 1
            continue
        if name in _CONFIG_DIR:
            if not eq:
                if i >= len(args) or args[i].startswith("-"):
                    _refuse(f"option {name} needs a folder")
                value = args[i]
                i += 1
            _check_config_dir(name, Path(value), command)
            continue
        why = _WHY.get(name, "it is not one of the options this command accepts")
        _refuse(f"option {name} is refused: {why}")
    return overrides


def _check_config_dir(option: str, folder: Path, command: HydraCommand) -> None:
    """``--config-dir`` may only add files to the command's own open config groups."""
    groups = command.open_groups()
    if not groups:
        closed = sorted(command.groups() & set(_CLOSED_GROUPS))
        also = f" ({', '.join(closed)} takes the packaged files only)" if closed else ""
        _refuse(f"option {option} is refused: this command has no config groups to add files to{also}")
    if not folder.is_dir():
        _refuse(f"{option}: {folder} is not a folder")
    allowed = ", ".join(sorted(f"{g}/" for g in groups))
    for entry in sorted(folder.iterdir()):
        if entry.stem in _CLOSED_GROUPS:
            _refuse(f"{option}: {entry} would add to the {entry.stem} group: "
                    f"{_CLOSED_GROUPS[entry.stem]}; the folder may only add files to {allowed}")
        if entry.name == "hydra" or entry.stem == command.config_name:
            _refuse(f"{option}: {entry} would replace the command's own configuration; "
                    f"the folder may only add files to {allowed}")
        if entry.is_dir() and entry.name in groups:
            for file in sorted(entry.rglob("*.y*ml")):
                text = file.read_text(encoding="utf-8", errors="replace")
                if _PACKAGE_DIRECTIVE.search(text) or _TOP_LEVEL_KEY.search(text):
                    _refuse(f"{option}: {file} may not move its settings elsewhere "
                            "(# @package), select other files (defaults:) or set hydra:")


def _check_overrides(overrides: Sequence[str], command: HydraCommand) -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import OverrideType
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        _refuse(f"malformed setting: {first}")
    open_mappings, known = command.open_mappings(), command.top_level_keys()
    for override, text in zip(parsed, overrides, strict=True):
        key = override.key_or_group
        if key == "hydra" or key.startswith(("hydra.", "hydra/")):
            _refuse(f"{key}: Hydra's own settings cannot be changed (where configuration comes "
                    "from, where the run's log goes and what it holds are fixed)")
        if override.package is not None:
            _refuse(f"{key}@{override.package}: a setting or config group cannot be moved")
        if override.is_sweep_override():
            _refuse(f"{key}: a command runs once; give one value (no sweeps)")
        if "${" in text:
            _refuse(f"{key}: interpolations (${{...}}) are not accepted on the command line; "
                    "give the value itself")
        if override.type == OverrideType.CHANGE and key.split(".")[0] not in known:
            _refuse(f"{key}: a key not in the configuration is refused")
        if key in _CLOSED_GROUPS and key in known:
            choices = command.packaged_options(key)
            if override.type != OverrideType.CHANGE or str(override.value()) not in choices:
                _refuse(f"{key} must be one of {', '.join(choices)}: {_CLOSED_GROUPS[key]}")
        if override.type == OverrideType.DEL:
            _refuse(f"~{key}: a setting cannot be deleted")
        if override.type == OverrideType.FORCE_ADD:
            _refuse(f"++{key}: a key not in the configuration is refused; set it as {key}=...")
        if override.type == OverrideType.ADD:
            parent, _, name = key.rpartition(".")
            if parent not in open_mappings or not name:
                where = " or ".join(f"+{m}.NAME" for m in sorted(open_mappings))
                also = f" (only {where} may add a key)" if where else ""
                _refuse(f"+{key}: a key not in the configuration is refused{also}")
    _check_group_options(parsed, command)


def _check_group_options(parsed: Sequence, command: HydraCommand) -> None:
    """``executor.KEY=...``: KEY must be an option of the executor chosen (or the default one)."""
    import yaml

    for group in sorted(set(_CLOSED_GROUPS) & command.groups()):
        chosen = command.default_option(group)
        for override in parsed:
            if override.key_or_group == group and str(override.value()) in command.packaged_options(group):
                chosen = str(override.value())
        options = {}
        for name in command.packaged_options(group):
            loaded = yaml.safe_load((command.config_dir / group / f"{name}.yaml").read_text(encoding="utf-8"))
            options[name] = set(loaded) - {"name"} if isinstance(loaded, dict) else set()
        for override in parsed:
            prefix, _, option = override.key_or_group.partition(".")
            if prefix != group or not option or option.split(".")[0] in options.get(chosen, set()):
                continue
            takers = [f"{group}={n}" for n in sorted(options) if option.split(".")[0] in options[n]]
            where = f"; it is one of {', '.join(takers)}" if takers else ""
            _refuse(f"{group}.{option} is not an option of {group}={chosen}{where} "
                    f"(options of {group}={chosen}: {', '.join(sorted(options.get(chosen, ()))) or 'none'})")


def _refuse(message: str) -> None:
    msg = f"{message}; nothing was run (see --help)"
    raise ConfigError(msg)
