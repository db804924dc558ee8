"""Keys: generation, owner-only key files, references by path or environment variable.

A key is 32 random bytes. On disk it is a two-line text file, readable by its owner only::

    pfl-key/1 role=network
    <64 hex digits>

Roles: ``network`` (K_net, held by every supplier of a linkage network) and ``ttp`` (K_ttp, held
by the trusted third party). Configuration refers to a key by path, or as ``env:NAME`` where the
environment variable NAME holds the path (or, for secret stores that inject values, the file's
two lines). Key material never appears in configuration, logs, manifests or messages: those
carry the key id, a fingerprint that identifies a key without revealing it.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from extracts.key_material import looks_like_key_material
from pseudonymisation.errors import KeyFileError

__all__ = ["key_id_text", "ROLES", "Key", "derive", "generate_key", "key_id", "load_key", "write_worker_key"]

ROLES = ("network", "ttp")
_HEADER = re.compile(r"^pfl-key/1 role=(\w+)$")
_HEX = re.compile(r"^[0-9a-f]{64}$")


def key_id(material: bytes) -> str:
    """Fingerprint of a key: 8 hex digits of a domain-separated SHA-256 (not reversible)."""
    return hashlib.sha256(b"pfl/key-id/v1\x00" + material).hexdigest()[:8]


@dataclass(frozen=True)
class Key:
    """A loaded key. ``repr`` and ``str`` show role and id only, never the material."""

    role: str
    material: bytes = field(repr=False)

    @property
    def id(self) -> str:
        return key_id(self.material)

    def __str__(self) -> str:
        return f"{self.role} key {self.id}"


def derive(key: Key, purpose: str, *, role: str | None = None) -> Key:
    """HKDF-SHA256 sub-key for one purpose (RFC 5869): stage-1 key, or a project's key.

    Different purposes give independent keys, so pseudonyms of two projects are unlinkable.
    """
    material = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"pfl/hkdf/v1", info=purpose.encode("utf-8")
    ).derive(key.material)
    return Key(role or f"{key.role}:{purpose}", material)


def generate_key(path: Path, role: str) -> Key:
    """Create a new random key file, owner-only (0600); refuses to overwrite an existing file."""
    if role not in ROLES:
        msg = f"key role {role!r}: expected one of {list(ROLES)}"
        raise KeyFileError(msg)
    path = Path(path)
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    material = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        msg = f"key file exists, not overwritten: {path}"
        raise KeyFileError(msg) from None
    with os.fdopen(fd, "w") as fh:
        fh.write(f"pfl-key/1 role={role}\n{material.hex()}\n")
    return Key(role, material)


def write_worker_key(folder: Path, key: Key, name: str) -> str:
    """Write ``key`` to an owner-only key file in the run's owner-only scratch ``folder``; return its path.

    Partition workers get keys by reference, never inside a task (a scheduler may log its tasks):
    the coordinator writes the one derived key a worker needs (never the master key it came from)
    and passes the path; the worker loads it with :func:`load_key` (role ``key.role``). The file
    goes when the scratch folder goes, at the end of the run or at the next run after a kill.
    """
    path = Path(folder) / f"{name}.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"pfl-key/1 role={key.role}\n{key.material.hex()}\n")
    return str(path)


def _parse(text: str, source: str, role: str) -> Key:
    lines = text.strip().splitlines()
    header = _HEADER.match(lines[0].strip()) if lines else None
    if len(lines) != 2 or header is None or not _HEX.match(lines[1].strip()):
        msg = f"{source}: not a key file (expected 'pfl-key/1 role=...' and 64 hex digits)"
        raise KeyFileError(msg)
    if header.group(1) != role:
        msg = f"{source}: a {header.group(1)} key where a {role} key is needed"
        raise KeyFileError(msg)
    return Key(role, bytes.fromhex(lines[1].strip()))


def load_key(reference: str | Path, role: str, *, setting: str | None = None) -> Key:
    """Load a key from a path or ``env:NAME``; refuse a key file others can read.

    Args:
        reference: a path, or ``env:NAME`` (NAME holds a path or the key file's content).
        role: the role the key must have (``network`` or ``ttp``).
        setting: the setting that named the key (``network_key``), for the messages.
    """
    ref = str(reference)
    where = f"{setting}: " if setting else ""
    source = ""
    if ref.startswith("env:"):
        name = ref[4:]
        value = os.environ.get(name)
        if not value:
            msg = f"{where}key reference env:{name}: the environment variable is not set"
            raise KeyFileError(msg)
        if value.lstrip().startswith("pfl-key/"):
            return _parse(value, f"env:{name}", role)
        ref = value
        source = f"key reference env:{name}: "
    path = Path(ref)
    try:
        st = path.stat()
    except OSError:  # not found, or a name no file system takes (too long, NUL)
        # A value that is no path may be the key itself (hex pasted where a path belongs):
        # never echo it (issue 10, item 5).
        shown = ("the value is not shown: it looks like key material, not a path"
                 if looks_like_key_material(ref) else str(path))
        msg = f"{where}{source}key file not found: {shown}"
        raise KeyFileError(msg) from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        msg = f"key file {path} is readable by others (mode {stat.S_IMODE(st.st_mode):o}); run: chmod 600 {path}"
        raise KeyFileError(msg)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        msg = f"key file {path} cannot be read as text"
        raise KeyFileError(msg) from None
    return _parse(text, str(path), role)


def key_id_text(value: object) -> str | None:
    """A key id as text: Hydra reads an all-digit id (``00537541``, about 2 % of ids) as a number.

    Ids are eight hex digits, so the number is padded back; anything else not text is refused.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**8:
        return f"{value:08d}"
    from extracts.errors import ConfigError

    msg = "expected_network_key_id: give it quoted, e.g. expected_network_key_id=\"'1a2b3c4d'\""
    raise ConfigError(msg)
