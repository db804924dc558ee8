"""The demo's working folder: claimed by a marker, refused when it holds what the demo did not write.

``pfl-demo`` replaces its own outputs on every run and reuses keys it finds, so it writes only into
a folder it created (a ``.pfl-demo`` marker says so) or one it was told to adopt (``adopt=true``).
The check runs twice: on the command line, before Hydra writes its record of the run into
``<work>/logs`` (:func:`check_command_line`: a refused folder gets nothing, not even a log), and
again when the demo starts (:func:`claim`), where the only thing that may have appeared since is
that record of this run.

Light on purpose: the command-line check runs before the engine's imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from extracts.errors import OutputExistsError
from extracts.targets import check_target

__all__ = ["MARKER", "check_command_line", "claim"]

MARKER = ".pfl-demo"  # in a working folder the demo created (or was told to adopt)
_MARKER_TEXT = "This folder is pfl-demo's working folder: every run replaces the outputs in it.\n"
HYDRA_LOGS = "logs"  # Hydra's record of this run, written into <work> before the demo's body (conf/demo.yaml)


def _refuse_foreign(work: Path, ignore: frozenset[str]) -> None:
    if (work / MARKER).is_file():
        return
    foreign = sorted(p.name for p in work.iterdir() if p.name not in ignore) if work.is_dir() else []
    if foreign or (work.exists() and not work.is_dir()):
        msg = (f"work={work} holds {len(foreign)} file(s) or folder(s) the demo did not write (no {MARKER} marker): "
               "the demo replaces its outputs and reuses keys it finds. Choose a new or empty folder, or pass "
               "adopt=true to let the demo use this one")
        raise OutputExistsError(msg)


def claim(work: Path, *, adopt: bool) -> None:
    """Refuse a working folder the demo did not create, unless ``adopt``; then mark it as the demo's.

    Raises:
        OutputExistsError: ``work`` holds files and no marker and ``adopt`` is false (exit 9).
    """
    if not adopt:
        _refuse_foreign(work, frozenset({HYDRA_LOGS}))  # checked whole on the command line, before Hydra
    work.mkdir(parents=True, exist_ok=True)
    (work / MARKER).write_text(_MARKER_TEXT)


def _setting(overrides: Sequence[str], name: str) -> str | None:
    value = None
    for arg in overrides:
        key, eq, rest = arg.partition("=")
        if eq and key == name:
            value = rest
    if value is None:
        return None
    # As Hydra reads the value: surrounding blanks dropped, a quoted string unquoted (work='/x' is
    # the folder /x, not a folder named '/x' that does not exist).
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1].replace("\\" + value[0], value[0])
    return value


def check_command_line(argv: Sequence[str], default_work: str) -> None:
    """Refuse, before Hydra writes anything, a ``work=`` folder the demo may not use.

    ``work=`` and ``adopt=`` are read as the command line gives them (the last one wins); a value
    Hydra would still resolve (``${...}``) or an ``adopt`` that is not plainly true or false is left
    to :func:`claim`, which the demo runs with the resolved settings.

    Raises:
        ConfigError: ``work`` is the root, the home folder, the current folder or above it (exit 2).
        OutputExistsError: the folder holds something the demo did not write (exit 9).
    """
    options = [a.partition("=")[0] for a in argv if a.startswith("-")]
    if any(o not in ("--config-dir", "-cd") for o in options):  # --help, --cfg, ...: the demo does not run
        return
    overrides = [a for a in argv if not a.startswith("-") and "=" in a]
    adopt = _setting(overrides, "adopt")
    if adopt is not None and adopt.strip().lower() != "false":  # true, or left to claim() to refuse
        return
    work = _setting(overrides, "work") or default_work
    if "${" in work or not work:
        return
    check_target(work, setting="work")  # a system folder is a bad setting (exit 2), not a foreign folder
    # The folder Hydra and the demo will use: neither expands "~" (a quoted work='~/x' is "./~/x").
    _refuse_foreign(Path(work), frozenset())
