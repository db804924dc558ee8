"""Shared behaviour of the command-line entry points: errors without tracebacks, exit codes.

Exit codes (``docs/exit-codes.md`` is the table; ``tests/integration/test_commands.py`` keeps
it in step with the code): 0 success; the ``exit_code`` of an
:class:`~extracts.errors.EngineError` for a user error (1 general, 2 configuration, 3 input
missing, 4 unreadable file, 5 contract broken, 6 key problem, 7 key mismatch, 8 linkage inputs
do not belong together, 9 output exists, 10 storage refused: permission denied or disk full,
11 release refused by the ledger);
2 as well for what Hydra rejects before a command starts (an unknown setting or option); 70 for
an internal error (a bug: the message says so, without the error's text, which could hold data);
130 when interrupted. ``PFL_DEBUG=1`` shows the traceback of an internal error instead (for
developers on generated data: a traceback may hold data values).
"""

from __future__ import annotations

import inspect
import os
import re
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from extracts.atomic import storage_error
from extracts.command_line import CONF_DIR, HydraCommand, check_command_line
from extracts.errors import ConfigError, EngineError, WorkerLostError

__all__ = [
    "CONF_DIR",
    "EXIT_CODES",
    "INTERNAL_ERROR",
    "INTERRUPTED",
    "activity",
    "console",
    "execution_settings",
    "exit_code_lines",
    "guarded",
    "log_folder_name",
    "flag",
    "text_setting",
    "require_settings",
    "run_hydra",
]

INTERNAL_ERROR = 70
INTERRUPTED = 130
# Every exit status of every command but pfl-audit, which is independent of the engine and has
# its own (audit/__main__.py): (name, when). The error classes carry the codes 1-11;
# a test checks that every EngineError subclass uses a code listed here, and that
# docs/exit-codes.md and each command's --help show exactly this table.
EXIT_CODES: dict[int, tuple[str, str]] = {
    0: ("ok", "the command completed; its outputs are complete"),
    1: ("error", "a user error of no more specific kind below"),
    2: ("configuration", (
        "a required setting is missing, a setting is unknown or invalid, or the command line is "
        "malformed or tries what no command allows (other config files, Hydra's settings, "
        "added or deleted keys: docs/exit-codes.md); checked before any data is read")),
    3: ("input missing", (
        "an input folder or file does not exist (extract, table file, linked, for_ttp or study "
        "folder)")),
    4: ("unreadable file", (
        "a file cannot be read as its format says (not Parquet, BOM, wrong separator, not UTF-8, "
        "not a study manifest), when one file is read on its own")),
    5: ("contract broken", (
        "the extract breaks the data contract, or a study's tables break theirs; every problem "
        "is listed, including missing or unreadable table files (validation reports them all "
        "at once)")),
    6: ("key problem", (
        "a key file is missing, readable by others, malformed or of the wrong role; key "
        "material was given by value instead of a path or env:NAME; a for_ttp folder is "
        "incomplete")),
    7: ("key mismatch", "inputs were made under another key than this step expects"),
    8: ("inputs do not belong together", (
        "linkage inputs without a manifest or of another kind (a for_ttp folder as content), "
        "content and token maps of other batches, suppliers or projects, or an input file that "
        "differs from its manifest")),
    9: ("output exists", (
        "the output folder exists (pass overwrite=true to replace it), another run is writing it "
        "(wait for it to end), or pfl-demo's work folder holds files the demo did not write "
        "(adopt=true)")),
    10: ("storage refused", "permission denied, read-only file system, disk or quota full"),
    11: ("release refused", (
        "the release ledger refuses the release (with earlier releases it would publish a "
        "quantity in two versions; the study is of another population; the ledger's policy is "
        "below the engine's floor or was edited by hand), does not exist, is in use by another "
        "run, or cannot be read; nothing was released")),
    12: ("worker lost", (
        "a worker of the executor died running a partition (killed by the system, out of memory, "
        "a node lost), lacks the project or wrote its result where this machine cannot see it (no shared "
        "filesystem); nothing was published: run again, with more memory or "
        "more partitions")),
    INTERNAL_ERROR: ("internal error", (
        "a bug; reported without its message, which could hold data (PFL_DEBUG=1 shows it on "
        "test data)")),
    INTERRUPTED: ("interrupted", "Ctrl-C, SIGINT or SIGTERM; the interrupted step published nothing"),
}
console = Console(stderr=True)
T = TypeVar("T")


def _fail(message: str, code: int) -> None:
    # soft_wrap: a path in the message is never broken over two lines.
    console.print("[bold red]error:[/]", escape(message), highlight=False, soft_wrap=True)
    sys.exit(code)


def _config_message(exc: BaseException) -> str:
    """Hydra's or OmegaConf's message, one paragraph (they name settings, never data)."""
    text = str(exc).split("Config search path:", 1)[0]  # Hydra's search path: noise here
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    cause = exc.__cause__
    if cause is not None and str(cause).strip():
        lines.append(f"({str(cause).strip().splitlines()[0]})")
    return " ".join(lines) or type(exc).__name__


# Set when Ctrl-C reaches this process: a SIGINT that lands inside Hydra or OmegaConf can surface
# as one of their errors (a half-updated config node), which is then an interruption, not bad input.
_SIGINT_SEEN = False


def _on_sigint(signum: int, frame: object) -> None:
    global _SIGINT_SEEN
    _SIGINT_SEEN = True
    raise KeyboardInterrupt


def _watch_sigint() -> None:
    """Note every Ctrl-C from now on (as Python's default handler, plus the note).

    SIGTERM (a job's time limit, ``kill PID``, ``docker stop``) is handled as a Ctrl-C: by default
    it ends the process at once, leaving the run's partial output and its scratch folder of
    person-level partitions beside the output until a rerun on the same output.
    """
    try:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, _on_sigint)
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigint)
    except ValueError:  # not the main thread: Python's handlers stay
        pass


def _interrupted() -> None:
    console.print(
        "[bold red]interrupted[/]: the interrupted step published no output "
        "(a rerun starts it afresh)",
        soft_wrap=True,
    )
    sys.exit(INTERRUPTED)


def guarded(fn: Callable[[], T]) -> T:
    """Run a command body; turn user errors into a message and an exit code, never a traceback.

    Internal errors are reported by type only: their message could hold data values. Any error
    after a Ctrl-C is reported as the interruption it follows.
    """
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    _restore_umask()  # inside a Hydra job: Hydra's own files are written, outputs keep the user's
    _watch_sigint()
    try:
        return fn()
    except EngineError as exc:
        if _SIGINT_SEEN:
            _interrupted()
        _fail(f"{exc}{_in_partition(exc)}", exc.exit_code)
    except KeyboardInterrupt:
        _interrupted()
    except (HydraException, OmegaConfBaseException) as exc:
        if _SIGINT_SEEN:
            _interrupted()
        # Rejected by Hydra before the command started (unknown setting or option), or a
        # setting that cannot be resolved: a configuration error like ConfigError.
        _fail(f"configuration: {_config_message(exc)} (see --help)", ConfigError.exit_code)
    except MemoryError as exc:
        _fail(f"out of memory{_in_partition(exc)}; use a smaller chunk size or preset", INTERNAL_ERROR)
    except Exception as exc:  # the last line of defence of a command
        if _SIGINT_SEEN:
            _interrupted()
        if _worker_lost(exc):  # a worker died: its message names the executor and partition only
            lost = WorkerLostError(str(exc))
            _fail(str(lost), lost.exit_code)
        translated = storage_error(exc)  # disk full, permission denied: path and reason only
        if translated is not None:
            _fail(f"{translated}{_in_partition(exc)}", translated.exit_code)
        if os.environ.get("PFL_DEBUG") == "1":  # developers on generated data only
            raise
        _internal(exc)
    except BaseException as exc:  # a Rust panic in polars or pyarrow (pyo3's PanicException)
        if isinstance(exc, SystemExit | GeneratorExit):
            raise
        if _SIGINT_SEEN:
            _interrupted()
        if os.environ.get("PFL_DEBUG") == "1":
            raise
        _internal(exc)
    raise AssertionError("unreachable")  # pragma: no cover - _fail exits


def _worker_lost(exc: BaseException) -> bool:
    """``exc`` is an :class:`execution.ExecutorError` (looked up, not imported: a command that
    never opened an executor has none, and an import here could meet a Ctrl-C)."""
    executors = sys.modules.get("execution.executors")
    return executors is not None and isinstance(exc, executors.ExecutorError)


def _partition_of(exc: BaseException) -> str:
    """"partition 3 of 4 of the study, on the dask executor" for an error a partition raised, else "".

    The executor's words (execution.executors.note_partition): stage, partition and executor,
    never data. A command shows an error's text, not its notes, so they are added here.
    """
    where = getattr(exc, "pfl_partition", None)
    return where if isinstance(where, str) else ""


def _in_partition(exc: BaseException) -> str:
    where = _partition_of(exc)
    return f" (in {where})" if where else ""


def _internal(exc: BaseException) -> None:
    where = _partition_of(exc)
    _fail(
        f"internal error ({type(exc).__name__}){f' in {where}' if where else ''}; please report it. "
        "The message is withheld because it may contain data values.",
        INTERNAL_ERROR,
    )


@contextmanager
def activity(description: str) -> Iterator[None]:
    """A spinner with the elapsed time while one long step runs (steps without a known total).

    Drawn on a terminal only, and removed when the step ends: the summary lines that follow
    are what a log keeps.
    """
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        progress.add_task(escape(description), total=None)
        yield


def run_hydra(main: Callable[[], None]) -> None:
    """Run a ``@hydra.main`` function: its command line checked first, its logs owner-only.

    Before Hydra does anything, :func:`extracts.command_line.check_command_line` refuses every
    option and override outside the allow-list (exit 2) and any argument holding key material
    (exit 6): Hydra writes the arguments into the run's configuration dump. Hydra's own files
    (``pfl-logs/<command>/<run>/``: the ``.hydra/`` dump and the log) are created under umask
    077, owner-only; the command's body, where :func:`guarded` runs again, gets the user's umask
    back for its outputs.

    Hydra reports a bad override or an unknown config option itself, with exit 1 and sometimes
    a traceback. Asked to re-raise (``HYDRA_FULL_ERROR``), it hands them to :func:`guarded`,
    which reports them as configuration errors (exit 2) without a traceback.
    """
    from omegaconf import OmegaConf

    os.environ["HYDRA_FULL_ERROR"] = "1"
    # ${pfl_exit_codes:} in a help template: the table above, so --help cannot drift from it.
    OmegaConf.register_new_resolver("pfl_exit_codes", exit_code_lines, replace=True)
    # ${pfl_log_name:${study.name}} in hydra.run.dir: a setting named in the log folder's path
    # (study=..., supplier=..., project=...) cannot move the log out of pfl-logs/.
    OmegaConf.register_new_resolver("pfl_log_name", log_folder_name, replace=True)

    def checked_then_hydra() -> None:
        check_command_line(sys.argv[1:], _hydra_command(main))
        _PRIVATE_UMASK.append(os.umask(0o077))
        try:
            main()
        finally:
            _restore_umask()

    guarded(checked_then_hydra)


# The user's umask while Hydra writes its files under 077; restored when the command body starts.
_PRIVATE_UMASK: list[int] = []


def _restore_umask() -> None:
    while _PRIVATE_UMASK:
        os.umask(_PRIVATE_UMASK.pop())


def _hydra_command(main: Callable[[], None]) -> HydraCommand:
    """The primary configuration ``@hydra.main`` gave ``main`` (hydra-core 1.3: in its closure)."""
    found = inspect.getclosurevars(main).nonlocals
    return HydraCommand(Path(str(found["config_path"])), str(found["config_name"]))


def log_folder_name(value: object) -> str:
    """A setting's value as one folder name: ``../../x`` becomes ``_.._x``, never a path."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(value)).strip(".") or "unset"


def exit_code_lines() -> str:
    """The exit-code table as help text, one ``code  name: when`` line each."""
    return "\n".join(f"  {code:>3}  {name}: {when}" for code, (name, when) in EXIT_CODES.items())


def require_settings(cfg: object, *keys: str) -> None:
    """Fail (exit 2) naming every required setting (dotted keys) left unset (``???`` or null)."""
    from omegaconf import OmegaConf

    missing = [k for k in keys if OmegaConf.select(cfg, k, default=None) in (None, "???")]
    if missing:
        msg = f"missing setting(s): {', '.join(missing)} (give them as key=value; see --help)"
        raise ConfigError(msg)


def text_setting(cfg: object, key: str) -> str:
    """A setting that is text, such as a project id: a number or yes/no is a configuration error.

    Hydra reads ``project=1e3`` as the number 1000.0 and ``project=1_000`` as 1000; read back as
    text, they name a project no one asked for, and the TTP would make its pseudonyms for it. A
    number is refused, and the message says how to quote one.
    """
    from omegaconf import OmegaConf

    value = OmegaConf.select(cfg, key, default=None)
    if not isinstance(value, str):
        msg = (f"{key}: expected text, but the command line gave a number or yes/no (1e3 would "
               f"become 1000.0); quote it, e.g. {key}=\"'1e3'\"")
        raise ConfigError(msg)
    return value


def flag(cfg: object, key: str) -> bool:
    """A yes/no setting, exactly ``true`` or ``false``: anything else is a configuration error.

    ``bool("maybe")`` is True: read loosely, ``overwrite=maybe`` or ``overwrite=no`` would replace
    an output. Only real booleans (Hydra reads ``true``/``false`` as such) are accepted.
    """
    from omegaconf import OmegaConf

    value = OmegaConf.select(cfg, key, default=None)
    if not isinstance(value, bool):
        msg = f"{key}: expected true or false (see --help)"
        raise ConfigError(msg)
    return value


@contextmanager
def execution_settings(cfg: object, *, stage: str | None = None, inputs: Sequence[Path] = (),
                       rows: Callable[[], int] | None = None,
                       persons: Callable[[], int] | None = None) -> Iterator[tuple[object, int]]:
    """The command's executor (opened for the block, then closed) and its partition count K.

    ``partitions`` and ``executor`` (issue 14). ``partitions=auto`` sizes K from ``memory_gb``
    and the rows of ``inputs`` (or ``rows()``), and the persons (``persons()``) where the stage's
    partitions hold per-person tables, by the memory model of ``stage``
    (:mod:`execution.memory`); a command without a ``stage`` needs a number. An invalid value, or
    an executor that cannot start (a missing extra, no scheduler at the address), is a
    configuration error (exit 2) that says why.
    """
    from omegaconf import OmegaConf

    from execution.config import executor_from_config
    from execution.executors import ExecutorError
    from execution.memory import input_rows, partitions_for

    executor_cfg = OmegaConf.select(cfg, "executor", default=None)
    settings = {"partitions": OmegaConf.select(cfg, "partitions", default=1),
                "memory_gb": OmegaConf.select(cfg, "memory_gb", default=None),
                "executor": OmegaConf.to_container(executor_cfg) if OmegaConf.is_config(executor_cfg) else executor_cfg}
    automatic = settings["partitions"] in (None, "auto")
    if automatic and stage is None:
        raise ConfigError("partitions=auto: this command sizes no partitions by memory; give a number (see --help)")
    try:
        k = 0 if automatic else partitions_for(settings, stage="", rows=0)  # checked before a cluster starts
        executor = executor_from_config(settings)
    except (ValueError, TypeError, ExecutorError) as exc:
        raise ConfigError(f"{exc} (see --help)") from None
    with executor:
        if automatic:
            try:
                count = rows() if rows is not None else sum(input_rows(p) for p in inputs)
                k = partitions_for(settings, stage=str(stage), rows=count, workers=executor.workers,
                                   persons=persons() if persons is not None else 0)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"{exc} (see --help)") from None
        yield executor, k
