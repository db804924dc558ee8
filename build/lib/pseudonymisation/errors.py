"""Errors of the pseudonymisation step.

    EngineError (extracts.errors)
    └── PseudonymisationError        base of this package's user errors (exit 6)
        ├── KeyError_                a key file is missing, unreadable, malformed or too open (exit 6)
        └── KeyMismatchError         inputs were made with another key than expected (exit 7)

Messages name files, roles and key ids (fingerprints), never key material, BSNs or pseudonyms.
"""

from __future__ import annotations

from extracts.errors import EngineError

__all__ = ["KeyFileError", "KeyMismatchError", "PseudonymisationError"]


class PseudonymisationError(EngineError):
    exit_code = 6


class KeyFileError(PseudonymisationError):
    """A key cannot be used: missing, not owner-only, malformed, or of the wrong role."""

    exit_code = 6


class KeyMismatchError(PseudonymisationError):
    """Pseudonyms or identifier files were made under a different key than this step expects."""

    exit_code = 7
