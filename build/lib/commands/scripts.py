"""Entry points: Ctrl-C clean from the first instant, a bent command line refused at once.

A command imports polars, pyarrow, Hydra and its own modules for most of a second before its
body, where :func:`extracts.cli.guarded` turns Ctrl-C into exit 130, takes over. A SIGINT in
that second used to end in Python's ``KeyboardInterrupt`` traceback (issue 10, item 11). Here
the handler is in place before any of those imports: while the command's module loads, SIGINT
prints the usual ``interrupted`` line and exits 130 at once (nothing has been written yet);
once it is loaded, Python's own handler is back, so the command's stages clean up as they do
for any Ctrl-C, and a ``KeyboardInterrupt`` that escapes them ends in the same line and code.
Once the command has ended, a Ctrl-C during the interpreter's shutdown ends it with the
command's own exit status.

A Hydra command's arguments are checked first (:func:`extracts.command_line.check_before_start`,
repeated by :func:`extracts.cli.run_hydra` for ``python -m``): a refused option, override or
key given by value costs a fifth of a second, not the imports.

What remains is the interpreter's own start (its ``site`` module: some 30-60 ms before this
module runs), where a SIGINT is Python's: it ends the process before any of our code has run.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType

__all__ = ["TARGETS"]

INTERRUPTED = 130
_MESSAGE = b"interrupted: the interrupted step published no output (a rerun starts it afresh)\n"

# Each console script: the function that runs it, and for a Hydra command its primary
# configuration (conf/<config>.yaml; a test checks it against the command's @hydra.main).
TARGETS: dict[str, tuple[str, str | None]] = {
    "pfl-generate": ("extracts.__main__:main", "generate"),
    "pfl-validate": ("extracts.validate_cli:main", None),
    "pfl-demo": ("pipeline.__main__:main", "demo"),
    "pfl-keygen": ("pseudonymisation.__main__:keygen_main", None),
    "pfl-supplier": ("pseudonymisation.__main__:supplier_main", "supplier"),
    "pfl-ttp": ("pseudonymisation.__main__:ttp_main", "ttp"),
    "pfl-link": ("linkage.__main__:main", "link"),
    "pfl-study": ("cohort.__main__:main", "run_study"),
    "pfl-release": ("release.__main__:main", "release/release"),
    "pfl-ledger": ("release.steward:main", None),
    "pfl-audit": ("audit.__main__:main", None),
    "pfl-report": ("report.__main__:main", None),
}


def _interrupted_while_loading(signum: int, frame: FrameType | None) -> None:
    os.write(2, _MESSAGE)
    os._exit(INTERRUPTED)  # nothing written yet: no clean-up to run


def _exit_status(status: object) -> int:
    if status is None:
        return 0
    return status if isinstance(status, int) else 1


def _finished(status: int) -> Callable[[int, FrameType | None], None]:
    """After the command has ended, Ctrl-C ends the interpreter's shutdown with that status."""

    def handler(signum: int, frame: FrameType | None) -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(status)

    return handler


def _launch(script: str) -> int | None:
    signal.signal(signal.SIGINT, _interrupted_while_loading)
    target, config = TARGETS[script]
    module, _, function = target.partition(":")
    status: object = None
    try:
        if config is not None:  # refuse a bent command line before a second of imports
            from extracts.command_line import check_before_start

            check_before_start(sys.argv[1:], config)
        main = getattr(importlib.import_module(module), function)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        status = main()
    except SystemExit as exc:
        status = exc.code
        raise
    except KeyboardInterrupt:  # between loading and the command's own handling
        sys.stderr.write(_MESSAGE.decode())
        status = INTERRUPTED
    finally:
        signal.signal(signal.SIGINT, _finished(_exit_status(status)))
    return status  # type: ignore[return-value]


def generate() -> int | None:
    return _launch("pfl-generate")


def validate() -> int | None:
    return _launch("pfl-validate")


def demo() -> int | None:
    return _launch("pfl-demo")


def keygen() -> int | None:
    return _launch("pfl-keygen")


def supplier() -> int | None:
    return _launch("pfl-supplier")


def ttp() -> int | None:
    return _launch("pfl-ttp")


def link() -> int | None:
    return _launch("pfl-link")


def study() -> int | None:
    return _launch("pfl-study")


def release() -> int | None:
    return _launch("pfl-release")


def ledger() -> int | None:
    return _launch("pfl-ledger")


def audit() -> int | None:
    return _launch("pfl-audit")


def report() -> int | None:
    return _launch("pfl-report")
