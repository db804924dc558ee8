"""The keyed pseudorandom function and the column codecs, vectorised end to end.

PRF: AES-256 applied to one 16-byte block per identifier (``shared/spec/pseudonymisation.md``,
"Speed"): a block cipher under a secret key is a pseudorandom permutation, hence a sound PRF on
fixed-length inputs, and OpenSSL evaluates a whole column of blocks in one batched call.

- Stage 1 (supplier): ``P1 = AES(K1, tag1 || BSN as 8-byte big-endian)`` with
  ``K1 = HKDF(K_net, "stage1")``. Keyed, because only ~90 million 9-digit strings pass the
  11-test: an unkeyed hash is reversed by enumeration in seconds.
- Stage 2 (TTP): ``P2 = AES(K_proj, P1)`` with ``K_proj = HKDF(K_ttp, "project/<id>")``.

Both are permutations under one key, so distinct inputs cannot collide; the steps still count
collisions (the spec: checked, never assumed absent).

Pseudonyms travel as labelled strings ``<scheme>.<key id>.<32 hex>`` (46 ASCII characters), e.g.
``P2v1.3fa2c9d1.0f3e...``: the label tells which scheme version and which key made a pseudonym,
so that after a key rotation old and new pseudonyms can run side by side. Strings are built from
and parsed into numpy byte arrays through Arrow buffers, never one Python object per row.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from extracts.bsn import BsnStatus, bsn_status, normalise_bsn
from pseudonymisation.errors import KeyMismatchError, PseudonymisationError
from pseudonymisation.keys import Key, derive

__all__ = [
    "P1_SCHEME",
    "P2_SCHEME",
    "TOKEN_SCHEME",
    "aes_ecb",
    "decode_labelled",
    "encode_labelled",
    "p1_from_bsn",
    "p2_from_p1",
    "parse_bsn_column",
    "project_key",
    "random_tokens",
    "stage1_key",
]

P1_SCHEME = "P1v1"
P2_SCHEME = "P2v1"
TOKEN_SCHEME = "TKv1"
LABELLED_LENGTH = 4 + 1 + 8 + 1 + 32
# Domain tag of stage-1 blocks: the first 8 bytes of every block (the BSN fills the last 8).
_STAGE1_TAG = b"pfl-bsn\x01"
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
# Two hex characters per byte value, as one uint16: one gather encodes a whole byte.
_HEX_PAIRS = np.stack([_HEX[np.arange(256) >> 4], _HEX[np.arange(256) & 15]], axis=1).copy().view(np.uint16).ravel()
_UNHEX = np.full(256, 255, dtype=np.uint8)
_UNHEX[_HEX] = np.arange(16, dtype=np.uint8)
_DIGIT_WEIGHTS = np.array([9, 8, 7, 6, 5, 4, 3, 2, -1], dtype=np.int64)  # the 11-test


def stage1_key(network_key: Key) -> Key:
    return derive(network_key, "stage1", role="stage1")


def project_key(ttp_key: Key, project: str) -> Key:
    if not project or not project.replace("-", "").replace("_", "").isalnum():
        msg = f"project id {project!r}: expected letters, digits, '-' or '_'"
        raise PseudonymisationError(msg)
    return derive(ttp_key, f"project/{project}", role="project")


def aes_ecb(key: Key, blocks: np.ndarray) -> np.ndarray:
    """AES-256 of each 16-byte row of ``blocks`` (uint8, shape (n, 16)), in one call."""
    if blocks.ndim != 2 or blocks.shape[1] != 16:
        msg = "internal: AES input must be (n, 16) bytes"
        raise ValueError(msg)
    encryptor = Cipher(algorithms.AES(key.material), modes.ECB()).encryptor()
    out = encryptor.update(np.ascontiguousarray(blocks, dtype=np.uint8).tobytes()) + encryptor.finalize()
    return np.frombuffer(out, dtype=np.uint8).reshape(-1, 16)


def p1_from_bsn(k1: Key, bsn: np.ndarray) -> np.ndarray:
    """Stage-1 pseudonyms (n, 16) of valid BSN values (int64)."""
    blocks = np.empty((len(bsn), 16), dtype=np.uint8)
    blocks[:, :8] = np.frombuffer(_STAGE1_TAG, dtype=np.uint8)
    blocks[:, 8:] = bsn.astype(">u8").view(np.uint8).reshape(-1, 8)
    return aes_ecb(k1, blocks)


def p2_from_p1(k_proj: Key, p1: np.ndarray) -> np.ndarray:
    """Project pseudonyms (n, 16) of stage-1 pseudonyms (n, 16)."""
    return aes_ecb(k_proj, p1)


def encode_labelled(raw: np.ndarray, scheme: str, kid: str) -> pl.Series:
    """``<scheme>.<kid>.<hex>`` strings of (n, 16) byte rows, built through one Arrow buffer."""
    n = len(raw)
    label = f"{scheme}.{kid}.".encode("ascii")
    if len(label) != LABELLED_LENGTH - 32:
        msg = "internal: labels are 4-character schemes and 8-character key ids"
        raise ValueError(msg)
    out = np.empty((n, LABELLED_LENGTH), dtype=np.uint8)
    out[:, : len(label)] = np.frombuffer(label, dtype=np.uint8)
    out[:, len(label):] = _HEX_PAIRS[raw].view(np.uint8).reshape(n, 32)
    offsets = np.arange(n + 1, dtype=np.int64) * LABELLED_LENGTH
    array = pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(out)])
    return pl.Series(array)


def random_tokens(n: int) -> pl.Series:
    """Fresh random record tokens (128 bits each) as labelled strings; unique (checked)."""
    from secrets import token_bytes

    for _ in range(3):
        raw = np.frombuffer(token_bytes(16 * n), dtype=np.uint8).reshape(n, 16)
        tokens = encode_labelled(raw, TOKEN_SCHEME, "00000000")
        if tokens.n_unique() == n:
            return tokens
    msg = "internal: random tokens collided three times"  # pragma: no cover - 2^-100 odds
    raise PseudonymisationError(msg)


def _fixed_width_bytes(series: pl.Series, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of exactly ``width`` bytes as an (m, width) uint8 array, and the mask of such rows."""
    arr = series.to_arrow(compat_level=pl.CompatLevel.oldest())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.large_string())
    n = len(arr)
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[arr.offset : arr.offset + n + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    mask = (lengths == width) & series.is_not_null().to_numpy()
    if mask.all() and n and offsets[-1] - offsets[0] == n * width:
        return data[offsets[0] : offsets[-1]].reshape(n, width), mask
    starts = offsets[:-1][mask]
    rows = np.empty((len(starts), width), dtype=np.uint8)
    step = 2_000_000
    for i in range(0, len(starts), step):
        rows[i : i + step] = data[starts[i : i + step, None] + np.arange(width)]
    return rows, mask


def _eleven_test_remainder(value: pl.Expr) -> pl.Expr:
    return pl.sum_horizontal(
        [w * ((value // 10**k) % 10) for w, k in zip(_DIGIT_WEIGHTS.tolist(), range(8, -1, -1), strict=True)]
    ) % 11


def parse_bsn_column(series: pl.Series) -> tuple[np.ndarray, pl.Series]:
    """Validate and normalise a raw BSN column (data-contract.md, "Identifiers").

    Returns ``(value, status)``: the BSN as int64 (0 where not valid) and the :class:`BsnStatus`
    of each row. Clean 9-digit values take a fast path (integer parse and 11-test as
    multi-threaded polars arithmetic); the rest (nulls, spaces, dots, hyphens, 8 digits,
    garbage) go through the full rules of :mod:`extracts.bsn`, on those rows only.
    """
    b = pl.col("b")
    parsed = pl.when((b.str.len_bytes() == 9) & ~b.str.starts_with("+")).then(b.str.to_integer(strict=False))
    fast = (
        pl.DataFrame({"b": series.cast(pl.String)})
        .lazy()
        .with_columns(v=pl.when(parsed >= 0).then(parsed))
        .select(
            pl.col("v").fill_null(0),
            pl.when(pl.col("v").is_null()).then(None)
            .when(pl.col("v") == 0).then(pl.lit(BsnStatus.ZERO.value))
            .when(_eleven_test_remainder(pl.col("v")) == 0).then(pl.lit(BsnStatus.VALID.value))
            .otherwise(pl.lit(BsnStatus.CHECK_DIGIT.value))
            .alias("bsn_status"),
        )
        .collect()
    )
    status = fast["bsn_status"]
    value = fast["v"].to_numpy().copy()
    slow = status.is_null().arg_true()
    if len(slow):
        sub = pl.DataFrame({"b": series.cast(pl.String).gather(slow)}).select(normalise_bsn(pl.col("b")).alias("n"))
        sub = sub.with_columns(bsn_status(pl.col("n")).alias("s"))
        ok = sub["s"] == BsnStatus.VALID.value
        value[slow.filter(ok).to_numpy()] = sub["n"].filter(ok).cast(pl.Int64).to_numpy()
        status = status.scatter(slow, sub["s"])
    value[(status != BsnStatus.VALID.value).to_numpy()] = 0
    return value, status


def decode_labelled(series: pl.Series, *, scheme: str, source: str) -> tuple[np.ndarray, list[str]]:
    """Parse labelled pseudonyms back into (n, 16) bytes; returns the bytes and the key ids seen.

    Raises :class:`KeyMismatchError` for another scheme and :class:`PseudonymisationError` for
    values that are not labelled pseudonyms (by count, never by value).
    """
    rows, ok = _fixed_width_bytes(series, LABELLED_LENGTH)
    bad = int((~ok).sum())
    if bad:
        msg = f"{source}: {bad} values are not {scheme} pseudonyms (wrong length or null)"
        raise PseudonymisationError(msg)
    labels = np.unique(rows[:, :14].copy().view("S14").ravel()) if len(rows) else np.array([], "S14")
    schemes = {lab[:4].decode() for lab in labels}
    if schemes - {scheme}:
        msg = f"{source}: expected {scheme} pseudonyms, found schemes {sorted(schemes)}"
        raise KeyMismatchError(msg)
    nibbles = _UNHEX[rows[:, 14:]]
    if (nibbles == 255).any():
        bad = int((nibbles == 255).any(axis=1).sum())
        msg = f"{source}: {bad} values are not {scheme} pseudonyms (not hexadecimal)"
        raise PseudonymisationError(msg)
    raw = (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]
    return raw.astype(np.uint8), sorted(lab[5:13].decode() for lab in labels)
