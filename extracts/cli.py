"""Shared behaviour of the command-line entry points: errors without tracebacks, exit codes.

Exit codes: 0 success; the ``exit_code`` of an :class:`~extracts.errors.EngineError` for a
user error (1 general, 2 configuration, 3 missing extract, 4 unreadable file, 5 contract
broken); 70 for an internal error (a bug: the message says so, still without row data);
130 when interrupted. ``PFL_DEBUG=1`` shows the traceback of an internal error instead (for
developers on generated data: a traceback may hold data values).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from rich.console import Console

from extracts.errors import ConfigError, EngineError

__all__ = ["CONF_DIR", "INTERNAL_ERROR", "console", "guarded", "require_settings"]

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
INTERNAL_ERROR = 70
console = Console(stderr=True)
T = TypeVar("T")


def guarded(fn: Callable[[], T]) -> T:
    """Run a command body; turn user errors into a message and an exit code, never a traceback.

    Internal errors are reported by type only: their message could hold data values.
    """
    try:
        return fn()
    except EngineError as exc:
        console.print("[bold red]error:[/]", str(exc), highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console.print("[bold red]interrupted[/]: no output was completed by the interrupted step")
        sys.exit(130)
    except MemoryError:
        console.print("[bold red]error:[/] out of memory; use a smaller chunk size or preset")
        sys.exit(INTERNAL_ERROR)
    except OSError as exc:
        # Disk full, permission denied: the path and the reason, nothing from the data.
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        console.print("[bold red]error:[/]", f"{exc.strerror or type(exc).__name__}{where}", highlight=False)
        sys.exit(EngineError.exit_code)
    except Exception as exc:  # noqa: BLE001 - the last line of defence of a command
        if os.environ.get("PFL_DEBUG") == "1":  # developers on generated data only
            raise
        console.print(
            f"[bold red]internal error[/] ({type(exc).__name__}); please report it. "
            "The message is withheld because it may contain data values."
        )
        sys.exit(INTERNAL_ERROR)


def require_settings(cfg: object, *keys: str) -> None:
    """Fail (exit 2) naming every required setting (dotted keys) left unset (``???`` or null)."""
    from omegaconf import OmegaConf

    missing = [k for k in keys if OmegaConf.select(cfg, k, default=None) in (None, "???")]
    if missing:
        msg = f"missing setting(s): {', '.join(missing)} (give them as key=value)"
        raise ConfigError(msg)
