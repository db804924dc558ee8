"""Reading a stage's ``manifest.json``: a JSON object, or an error that names the file and says why.

Every stage reads the manifest of the folder it was handed (a supplier's ``for_ttp`` folder at the
TTP, ``for_research`` and the token maps at linkage). A truncated or damaged file is bad input with
the reading stage's own exit code, never an internal error; the message names the file and what
was expected, never a value from it.
"""

from __future__ import annotations

import json
from pathlib import Path

from extracts.errors import EngineError

__all__ = ["read_manifest_object"]


def read_manifest_object(path: Path, *, error: type[EngineError], expected: str) -> dict:
    """The JSON object in ``path``.

    Args:
        path: the manifest file (it exists; a missing file is the caller's own message).
        error: the error class of the reading stage (its exit code).
        expected: what the folder should be, ending the message (e.g. "expected a token-map folder").

    Raises:
        error: the file is not UTF-8 JSON (truncated or damaged) or not a JSON object.
    """
    try:
        manifest = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        msg = f"{path}: {Path(path).name} is not valid JSON (truncated or damaged); {expected}"
        raise error(msg) from None
    if not isinstance(manifest, dict):
        msg = f"{path}: {Path(path).name} is not a JSON object; {expected}"
        raise error(msg)
    return manifest
