"""Running the installed commands as a user does, and what a clean failure looks like.

Import from a test with ``from command_runner import ...`` (``tests/`` is on ``sys.path``).
"""

from __future__ import annotations

import importlib
import io
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["BIN", "assert_clean_failure", "command_env", "command_in_process", "run_command", "signal_when"]

BIN = Path(sys.executable).parent


def command_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a user's shell: a wide terminal, no debug switches."""
    environ = {k: v for k, v in os.environ.items() if k not in ("PFL_DEBUG", "HYDRA_FULL_ERROR")}
    return {**environ, "COLUMNS": "200", **(extra or {})}


def run_command(name: str, *args: str, cwd: Path, env: dict[str, str] | None = None,
                prefix: Sequence[str] = (), timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run an installed command (``prefix``: e.g. a privilege-dropping wrapper) to completion."""
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run([*prefix, str(BIN / name), *args], capture_output=True, text=True,
                          cwd=cwd, env=command_env(env), check=False, timeout=timeout)


def assert_clean_failure(proc: subprocess.CompletedProcess[str], code: int, says: str) -> None:
    """The documented exit code, a one-paragraph message that says ``says``, no traceback."""
    both = proc.stdout + proc.stderr
    assert proc.returncode == code, f"exit {proc.returncode}, expected {code}:\n{both[-2000:]}"
    assert "Traceback" not in both, both[-2000:]
    message = proc.stderr.strip()
    assert message, "no message on stderr"
    assert "error" in message.lower() or code == 130
    assert says.lower() in message.lower(), message
    assert "\n\n" not in message, f"more than one paragraph:\n{message}"


def signal_when(name: str, *args: str, cwd: Path, ready: Callable[[], bool], signum: int,
                timeout: float = 120, env: dict[str, str] | None = None,
                ) -> tuple[subprocess.CompletedProcess[str], bool]:
    """Start a command, send ``signum`` as soon as ``ready()`` holds, wait for it to end.

    Returns the finished process and whether the signal was sent while it still ran (False when
    the command finished first: the caller's input was too small to catch it mid-stage).
    """
    cwd.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([str(BIN / name), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd, env=command_env(env))
    sent = False
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if ready():
                proc.send_signal(signum)
                sent = True
                break
            time.sleep(0.005)
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), sent


def audit_in_process(*args: str) -> tuple[int, str, str]:
    """``pfl-audit`` with ``args`` in this process: (exit status, standard output, standard error)."""
    import contextlib  # noqa: PLC0415
    import io  # noqa: PLC0415

    from audit.__main__ import main  # noqa: PLC0415

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


# --- a command in this process --------------------------------------------------------------------

_SCRIPTS: dict[str, str] = tomllib.loads(
    (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]["scripts"]


def command_in_process(name: str, *args: str, cwd: Path,
                       env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """:func:`run_command` without a new interpreter: the console script's own function, here.

    What the installed script does (``sys.exit(<[project.scripts] function>())``) runs in this
    process, with what the process would have had: ``sys.argv``, the environment of
    :func:`command_env`, ``cwd`` as the working folder, Python's default warning filters, and
    file descriptors 1 and 2 (and ``sys.stdout``/``sys.stderr`` on them) sent to files that
    become the result's stdout and stderr. An exception that escapes is printed as the
    interpreter prints it (exit 1). Everything the command changes in the process is put back:
    the working folder, the environment, the signal handlers, the umask, the loggers.

    A command spends about a second importing polars, pyarrow and Hydra in a new process; here
    they are imported once. tests/integration/test_commands.py runs one case of each command
    both ways and checks that the results are the same.
    """
    module, _, function = _SCRIPTS[name].partition(":")
    entry = getattr(importlib.import_module(module), function)
    cwd.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        with _process_state(cwd, [str(BIN / name), *args], command_env(env)), _streams_to(out, err):
            try:
                code = _exit_status(entry())
            except SystemExit as exc:
                code = _exit_status(exc.code)
            except BaseException:  # what the interpreter does with an uncaught exception
                traceback.print_exc()
                code = 1
        return subprocess.CompletedProcess([str(BIN / name), *args], code, _read(out), _read(err))


def _exit_status(status: object) -> int:
    """``sys.exit(status)`` as the interpreter ends: None 0, an int itself, else printed and 1."""
    if status is None:
        return 0
    if isinstance(status, int):
        return status
    print(status, file=sys.stderr)
    return 1


def _read(file: tempfile._TemporaryFileWrapper[bytes]) -> str:  # type: ignore[name-defined]
    file.seek(0)
    return file.read().decode(errors="replace")


@contextmanager
def _streams_to(out: object, err: object) -> Iterator[None]:
    """File descriptors 1 and 2, and ``sys.stdout``/``sys.stderr`` over them, into two files."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved_fds = [os.dup(1), os.dup(2)]
    saved_streams = (sys.stdout, sys.stderr)
    os.dup2(out.fileno(), 1)  # type: ignore[attr-defined]
    os.dup2(err.fileno(), 2)  # type: ignore[attr-defined]
    sys.stdout = io.TextIOWrapper(os.fdopen(os.dup(1), "wb"), encoding="utf-8", write_through=True)
    sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(2), "wb"), encoding="utf-8",
                                  errors="backslashreplace", write_through=True)
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.close()
            except (OSError, ValueError):
                pass
        sys.stdout, sys.stderr = saved_streams
        for fd, saved in zip((1, 2), saved_fds, strict=True):
            os.dup2(saved, fd)
            os.close(saved)


@contextmanager
def _process_state(cwd: Path, argv: list[str], environ: dict[str, str]) -> Iterator[None]:
    """A process's state for one command, and this process's own back afterwards."""
    saved_cwd, saved_argv, saved_environ = os.getcwd(), sys.argv, dict(os.environ)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    umask = os.umask(0o022)
    os.umask(umask)
    loggers = _logger_state()
    os.chdir(cwd)
    sys.argv = argv
    os.environ.clear()
    os.environ.update(environ)
    try:
        with warnings.catch_warnings():
            warnings.resetwarnings()  # the interpreter's default filters, and its way of showing them
            for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
                warnings.simplefilter("ignore", category)
            warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")
            warnings.showwarning = _show_warning
            yield
    finally:
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_environ)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        os.umask(umask)
        _restore_loggers(loggers)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: object = None, line: str | None = None) -> None:
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


_LoggerState = tuple[list[logging.Handler], int, bool, bool]


def _logger_state() -> dict[str, _LoggerState]:
    loggers = {"": logging.getLogger(), **{name: logger for name, logger in logging.Logger.manager.loggerDict.items()
                                          if isinstance(logger, logging.Logger)}}
    return {name: (list(lg.handlers), lg.level, lg.disabled, lg.propagate) for name, lg in loggers.items()}


def _restore_loggers(saved: dict[str, _LoggerState]) -> None:
    """Each logger as it was; a handler the command added (Hydra's log file) is closed."""
    for name, logger in [("", logging.getLogger()), *logging.Logger.manager.loggerDict.items()]:
        if not isinstance(logger, logging.Logger):
            continue
        handlers, level, disabled, propagate = saved.get(name, ([], logging.NOTSET, False, True))
        for handler in logger.handlers:
            if handler not in handlers:
                handler.close()
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.disabled, logger.propagate = disabled, propagate
