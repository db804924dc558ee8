"""Known answers of the keyed fallback encodings (``pseudonymisation/encodings.py``, scheme FBv1).

Under the all-zero network key the encodings of one fixed person are pinned: any change of sub-key
derivation, block layout, standardisation, filter size, hashing or permutation changes them and
must come with a new scheme version (suppliers of one network must agree bit for bit).
"""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import polars as pl

from pseudonymisation.encodings import ENCODING_SCHEME, encode_identifiers, fallback_keys
from pseudonymisation.keys import Key, derive
from pseudonymisation.prf import aes_ecb

ZERO = Key("network", bytes(32))
PERSON = pl.DataFrame({
    "postcode6": ["1234AB"], "house_number": ["12a"], "insurer": ["3311"], "insurance_number": ["123456789"],
    "family_name": ["van der Berg"], "initials": ["J.P."], "birth_date": [dt.date(1950, 1, 2)], "sex": ["F"],
})


def test_fallback_encodings_known_answers_under_the_zero_key() -> None:
    e = encode_identifiers(fallback_keys(ZERO), PERSON)
    assert ENCODING_SCHEME == "FBv1"
    assert e["t_insurance"][0] == 4293004391934414787
    assert e["t_birth"][0] == -3779762335151358314
    assert e["t_address"][0] == -3319522642580938774
    assert hashlib.sha256(e["bf_family_name"].tobytes()).hexdigest() == (
        "5d9db30d9a45efd79edf5b5d6c985925e113fc43ae48d9a78c0ae20e67a92469")
    assert hashlib.sha256(e["bf_initials"].tobytes()).hexdigest() == (
        "56e4d826ea72239f3c4f0757a0a5450c6992b402b9aa53e396ef8c4cd0c273e0")


def test_birth_token_is_aes_of_the_documented_block_under_its_own_subkey() -> None:
    """'B' | 3 zero bytes | days since 1970 (i32, big-endian) | sex (F = 2) | 7 zero bytes."""
    days = (dt.date(1950, 1, 2) - dt.date(1970, 1, 1)).days
    block = bytes([0x42, 0, 0, 0]) + days.to_bytes(4, "big", signed=True) + bytes([2]) + bytes(7)
    raw = aes_ecb(derive(ZERO, "fallback/v1/t_birth", role="fallback"), np.frombuffer(block, np.uint8).reshape(1, 16))
    expected = int.from_bytes(bytes(raw[0, :8]), "big", signed=True)
    assert encode_identifiers(fallback_keys(ZERO), PERSON)["t_birth"][0] == expected


def test_fallback_subkeys_differ_per_field_and_from_stage1() -> None:
    keys = fallback_keys(ZERO)
    ids = [k.id for k in (*keys.tokens.values(), *keys.blooms.values())]
    assert len(set(ids)) == len(ids) == 8  # 3 token fields, 5 Bloom fields
    assert derive(ZERO, "stage1").id not in ids
