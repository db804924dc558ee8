"""The supplier step's randomness and partition key, the same in every partition (issue 14).

**Run key.** Each run draws a fresh 32-byte key from the operating system's CSPRNG
(:func:`fresh_run_key`); it lives only in the run's owner-only scratch folder and goes with it.
Every random choice of the run is a keyed pseudorandom function of something fixed, under that
key, so that it does not depend on which partition or worker makes it:

- a person's record token: the first 8 bytes of ``AES(K_run, "pfl-tok" || BSN)`` (a valid BSN);
- the record token of an EHR record without a usable BSN: ``AES(K_run, "pfl-rec" || row)``, the
  record's row number among the extract's clean patients;
- the calibration sample (``supplier_encodings.CALIBRATION_SAMPLE`` records with a valid BSN):
  the records with the smallest ``AES(K_run, "pfl-smp" || row)``, a uniform random sample.

Tokens are therefore as before: fresh per run (a new run key), unlinkable across runs and
suppliers without the TTP's maps, indistinguishable from random 64-bit integers. Like random
draws they can repeat (64 bits: odds about 1 in 100,000 among 18 million persons); the reduce
checks uniqueness over all partitions and refuses the run (run it again: a new key).

**Partition key.** A valid BSN's partition is ``AES(K_part, "pfl-prt" || BSN) mod K`` with
``K_part = HKDF(K_net, "partition/v1")`` -- keyed, because an unkeyed hash of a BSN is reversed
by enumerating the 90 million valid BSNs; with another network key the assignment is
independent. All rows of one BSN, in every table, share a partition. A row without a valid BSN
has no person to keep together: it goes by its row number in its table, ``row mod K``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

import numpy as np
import polars as pl

from extracts.bsn import BsnStatus
from pseudonymisation.keys import Key, derive
from pseudonymisation.prf import aes_ecb, parse_bsn_column

__all__ = ["ROLE", "bsn_partitions", "fresh_run_key", "of_valid_bsns", "partition_key", "person_tokens",
           "record_tokens", "sample_scores"]

ROLE = "run"
_TOKEN, _RECORD, _SAMPLE, _PARTITION = b"pfl-tok\x01", b"pfl-rec\x01", b"pfl-smp\x01", b"pfl-prt\x01"


def fresh_run_key() -> Key:
    """A new random key for one run of the supplier step (never stored beyond the run's scratch)."""
    return Key(ROLE, secrets.token_bytes(32))


def partition_key(network_key: Key) -> Key:
    """``K_part = HKDF(K_net, "partition/v1")``: the keyed partition of BSNs."""
    return derive(network_key, "partition/v1", role="partition")


def of_valid_bsns(bsn: pl.Series, keyed: Callable[[np.ndarray], pl.Series] | None) -> tuple[
        np.ndarray, np.ndarray, pl.Series]:
    """A batch of BSN values, row by row: ``keyed`` of the BSN where it is valid (0 elsewhere, and
    everywhere without ``keyed``) as int64, whether it is valid, and its status."""
    value, status = parse_bsn_column(bsn)
    valid = (status == BsnStatus.VALID.value).to_numpy()
    out = np.zeros(len(value), dtype=np.int64)
    if keyed is not None:
        out[valid] = keyed(value[valid]).to_numpy()
    return out, valid, status


def _words(key: Key, tag: bytes, values: np.ndarray) -> np.ndarray:
    """The first 8 bytes of ``AES(key, tag || value)`` (value as 8 bytes big-endian), as uint64."""
    blocks = np.empty((len(values), 2), dtype=">u8")
    blocks[:, 0] = int.from_bytes(tag, "big")
    blocks[:, 1] = np.asarray(values, dtype=np.int64).astype(np.uint64)
    out = aes_ecb(key, blocks.view(np.uint8).reshape(-1, 16))
    return np.ascontiguousarray(out[:, :8]).view(">u8").ravel().astype(np.uint64)


def person_tokens(run_key: Key, bsn: np.ndarray) -> pl.Series:
    """The record token (Int64) of each valid BSN value (int64) for this run."""
    return pl.Series("token", _words(run_key, _TOKEN, bsn).view(np.int64))


def record_tokens(run_key: Key, rows: np.ndarray) -> pl.Series:
    """The record token (Int64) of each EHR record without a usable BSN, by its row number."""
    return pl.Series("token", _words(run_key, _RECORD, rows).view(np.int64))


def sample_scores(run_key: Key, rows: np.ndarray) -> pl.Series:
    """The calibration-sample score (UInt64) of each record, by its row number: smallest are drawn."""
    return pl.Series("score", _words(run_key, _SAMPLE, rows))


def bsn_partitions(k_part: Key, bsn: np.ndarray, count: int) -> pl.Series:
    """The partition (Int64, 0..count-1) of each valid BSN value (int64)."""
    return pl.Series("part", (_words(k_part, _PARTITION, bsn) % np.uint64(count)).astype(np.int64))
