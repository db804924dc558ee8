"""Outputs that are complete or absent: write under a temporary name, then rename.

Every stage writes its folder through :func:`staging`: work happens in ``.<name>.partial``
beside the target; on success the folder is moved into place (replacing an old one only when
asked), on any failure it is removed. A reader never sees half an output that looks complete,
and an interrupted run leaves nothing a rerun could mistake for a result.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from extracts.errors import EngineError

__all__ = ["check_output", "staging"]


def check_output(out: Path, *, overwrite: bool) -> None:
    """Refuse to replace an existing output folder unless asked to."""
    if Path(out).exists() and not overwrite:
        msg = f"output folder exists: {out} (pass overwrite=true to replace it)"
        raise EngineError(msg)


@contextmanager
def staging(out: Path, *, overwrite: bool) -> Iterator[Path]:
    """Yield a fresh temporary folder that becomes ``out`` when the block completes."""
    out = Path(out)
    check_output(out, overwrite=overwrite)
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = out.with_name(f".{out.name}.old")
    if out.exists():
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
