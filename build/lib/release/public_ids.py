"""How the release prints ids and checksums: never a run of nine digits, never a function of data.

Two rules for every id and checksum in a public output (``manifest.json``, ``summary.md``):

- **No nine digits in a row.** A leak scanner reads any run of nine digits that passes the BSN
  11-test as a BSN (``extracts.bsn``, ``audit.identifiers``), and about one 64-hex SHA-256 in
  twenty holds such a run by chance. Hex is therefore printed in groups of four joined by ``-``
  (as the ledger's ids already are), times with their separators, so no run of digits is longer
  than four.
- **Nothing derived from unprotected data.** The release id is the time and 32 random bits; a
  checksum is printed only for a file that is in the release (issue 11.1: a hash of a study table
  confirms guesses of its hidden cells). Provenance of the inputs goes to the steward's ledger.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from pathlib import Path

from extracts.atomic import file_sha256

__all__ = ["CHECKSUM_PREFIX", "RELEASE_ID", "checksum", "grouped", "release_id"]

CHECKSUM_PREFIX = "sha256:"
RELEASE_ID = re.compile(r"r-[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}-[0-9]{2}-[0-9]{2}Z-[0-9a-f]{4}-[0-9a-f]{4}")
_HEX = re.compile(r"[0-9a-f]+")


def grouped(hexdigits: str) -> str:
    """Hex digits in groups of four joined by ``-`` (``319d23e6`` -> ``319d-23e6``).

    Raises:
        ValueError: ``hexdigits`` is not lower-case hex.
    """
    if not _HEX.fullmatch(hexdigits):
        msg = "grouped: expected lower-case hex digits"
        raise ValueError(msg)
    return "-".join(hexdigits[i:i + 4] for i in range(0, len(hexdigits), 4))


def checksum(path: Path) -> str:
    """The SHA-256 of a release file as the manifest prints it: ``sha256:`` and 16 groups of 4 hex."""
    return CHECKSUM_PREFIX + grouped(file_sha256(path))


def release_id(created: datetime) -> str:
    """A new release id: the UTC time and 32 random bits (``r-2024-05-01T10-15-00Z-3f9c-2a1b``).

    Random, not a hash of the study: an id derived from the inputs would be a function of the
    unprotected tables like any published hash of them.
    """
    return f"r-{created.strftime('%Y-%m-%dT%H-%M-%SZ')}-{grouped(secrets.token_hex(4))}"
