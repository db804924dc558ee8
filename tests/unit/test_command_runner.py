"""``command_runner.command_in_process`` leaves this process as it found it.

The suite runs most commands' cases in its own process (a new interpreter per case spent a
second importing): a command that left its working folder, environment (``HYDRA_FULL_ERROR``),
signal handlers, umask, loggers (Hydra's log file) or warning filters behind would change every
test after it on that test worker. ``tests/integration/test_commands.py`` checks that the
installed scripts say what the in-process runs say.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import warnings
from pathlib import Path

from command_runner import command_in_process


def _state() -> dict[str, object]:
    umask = os.umask(0o022)
    os.umask(umask)
    root = logging.getLogger()
    return {"cwd": os.getcwd(), "environ": dict(os.environ), "argv": list(sys.argv),
            "sigint": signal.getsignal(signal.SIGINT), "sigterm": signal.getsignal(signal.SIGTERM),
            "umask": umask, "root handlers": list(root.handlers), "root level": root.level,
            "warning filters": list(warnings.filters), "stdout": sys.stdout, "stderr": sys.stderr}


def test_a_hydra_command_run_in_process_leaves_the_process_as_it_was(tmp_path: Path) -> None:
    before = _state()
    # An unknown preset: Hydra composes, configures its logging and log file, the body fails.
    proc = command_in_process("pfl-generate", "preset=tiny", f"out={tmp_path / 'out'}", "preset.practices=0",
                              cwd=tmp_path / "cwd")
    assert proc.returncode == 2 and "practices" in proc.stderr, proc.stderr
    assert list((tmp_path / "cwd" / "pfl-logs").rglob("*.log")), "Hydra ran (its log file) in the folder given"
    assert _state() == before


def test_what_a_command_prints_is_its_output_and_exit_status_whatever_the_stream(tmp_path: Path) -> None:
    # pfl-keygen (argparse) prints its usage and error on stderr and exits 2 through SystemExit.
    proc = command_in_process("pfl-keygen", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == "" and "usage: pfl-keygen" in proc.stderr and "required" in proc.stderr
    # --help on stdout, exit 0.
    proc = command_in_process("pfl-keygen", "--help", cwd=tmp_path)
    assert proc.returncode == 0 and "usage: pfl-keygen" in proc.stdout and proc.stderr == ""
