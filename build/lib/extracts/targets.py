"""Where an output may go: never onto, into or around an input, never onto a folder of the system.

Every command replaces its output folder when given ``overwrite=true``; an output folder that is,
holds or lies inside one of the command's inputs would delete that input (or publish into it). So
every command checks its ``out`` with :func:`check_target` before it reads or deletes anything
(``docs/exit-codes.md``, exit 2). Paths are compared after resolving symbolic links, so a link to
an input is the input. Refused as well, with or without inputs:

- the file-system root, the home folder and every folder above it, the current folder and every
  folder above it: replacing one of them would delete far more than an output;
- a folder inside a folder of person-level records, recognised by a ``patients`` or ``insured``
  table file (a supplier's extract, the generator's truth, a stage's person-level layout): an
  output never mixes with an extract (``docs/security-boundaries.md``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from extracts.errors import ConfigError

__all__ = ["check_target", "person_level_folder"]

# A folder holding one of these files holds person-level records (data-contract.md: the tables
# that carry the BSN).
_PERSON_TABLES = tuple(f"{table}.{ext}" for table in ("patients", "insured") for ext in ("parquet", "csv"))


def _resolved(path: str | os.PathLike[str]) -> Path:
    return Path(path).expanduser().resolve()


def person_level_folder(folder: Path) -> str | None:
    """The person-level table file ``folder`` holds (a name), or None."""
    for name in _PERSON_TABLES:
        if (folder / name).is_file():
            return name
    return None


def _system_folder(out: Path) -> str | None:
    """Why ``out`` (resolved) is a folder no command may replace, or None."""
    if out.parent == out:
        return "the root of the file system"
    home, cwd = _resolved(Path.home()), _resolved(Path.cwd())
    if out == home or out in home.parents:
        return "your home folder" if out == home else "a folder that holds your home folder"
    if out == cwd or out in cwd.parents:
        return "the current folder" if out == cwd else "a folder that holds the current folder"
    return None


def check_target(out: str | os.PathLike[str], *, inputs: Mapping[str, str | os.PathLike[str] | None] | None = None,
                 setting: str = "out") -> Path:
    """Refuse an output location that would destroy or mix with an input (exit 2).

    Checked before anything is read, written or deleted.

    Args:
        out: the output folder (or file) the command will write, and replace with overwrite=true.
        inputs: setting name -> the input folder or file it names (None entries are skipped).
        setting: the name of the output's setting, for the message (``out``, ``work``).

    Returns:
        ``out`` with symbolic links resolved.

    Raises:
        ConfigError: ``out`` equals, holds or lies inside an input; is the root, the home
            folder, the current folder or a folder above one of them; or lies inside a folder of
            person-level records. The message names the settings and paths, nothing of the data.
    """
    target = _resolved(out)
    system = _system_folder(target)
    if system:
        msg = f"{setting}={out} is {system}: choose a new folder of its own for the output (nothing was changed)"
        raise ConfigError(msg)
    for name, given in (inputs or {}).items():
        if given is None or str(given).startswith("env:"):  # a key named by environment variable
            continue
        source = _resolved(given)
        if target == source:
            where = "is the input"
        elif source in target.parents:
            where = "lies inside the input"
        elif target in source.parents:
            where = "holds the input"
        else:
            continue
        msg = (f"{setting}={out} {where} {name}={given}: an output must be a folder of its own, outside "
               "every input (with overwrite=true the input would be deleted; nothing was changed)")
        raise ConfigError(msg)
    for folder in (target, *target.parents):
        found = person_level_folder(folder)
        if found:
            msg = (f"{setting}={out} lies inside {folder}, a folder of person-level records ({found}): "
                   "write outputs beside an extract, never into it (nothing was changed)")
            raise ConfigError(msg)
    return target
