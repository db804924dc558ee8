"""Running the installed commands as a user does, and what a clean failure looks like.

Import from a test with ``from command_runner import ...`` (``tests/`` is on ``sys.path``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["BIN", "assert_clean_failure", "command_env", "run_command", "signal_when"]

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
