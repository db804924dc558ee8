"""Known-answer tests of the primitives behind the pseudonyms (``shared/spec/pseudonymisation.md``).

Published vectors (FIPS-197, NIST SP 800-38A, RFC 5869, RFC 4231) show that the primitives are the
standard ones and are wired correctly (byte order, block layout, no mode other than ECB).
The engine's own known answers (all-zero keys) pin the scheme: any change of tag, block layout,
HKDF salt or info, or label format changes them, and must come with a new scheme version.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pseudonymisation.keys import Key, derive, key_id
from pseudonymisation.prf import (
    P1_SCHEME,
    P2_SCHEME,
    aes_ecb,
    decode_labelled,
    encode_labelled,
    p1_from_bsn,
    p2_from_p1,
    parse_bsn_column,
    project_key,
    stage1_key,
)


def _blocks(*hex_blocks: str) -> np.ndarray:
    return np.frombuffer(bytes.fromhex("".join(hex_blocks)), dtype=np.uint8).reshape(-1, 16)


def _hex_rows(rows: np.ndarray) -> list[str]:
    return [bytes(row).hex() for row in rows]


# --- AES-256 (the PRF) ---------------------------------------------------------------------

FIPS197_C3_KEY = bytes(range(32))  # 000102...1f
FIPS197_C3_PLAIN = "00112233445566778899aabbccddeeff"
FIPS197_C3_CIPHER = "8ea2b7ca516745bfeafc49904b496089"

# NIST SP 800-38A, F.1.5 ECB-AES256.Encrypt
SP800_38A_KEY = bytes.fromhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
SP800_38A_PLAIN = [
    "6bc1bee22e409f96e93d7e117393172a",
    "ae2d8a571e03ac9c9eb76fac45af8e51",
    "30c81c46a35ce411e5fbc1191a0a52ef",
    "f69f2445df4f9b17ad2b417be66c3710",
]
SP800_38A_CIPHER = [
    "f3eed1bdb5d2a03c064b5a7e3db181f8",
    "591ccb10d410ed26dc5ba74a31362870",
    "b6ed21b99ca6f4f9f153e7b1beafed1d",
    "23304b7a39f9f3ff067d8d8f9e24ecc7",
]


def test_aes_ecb_fips197_appendix_c3_single_block() -> None:
    out = aes_ecb(Key("network", FIPS197_C3_KEY), _blocks(FIPS197_C3_PLAIN))
    assert out.shape == (1, 16)
    assert out.dtype == np.uint8
    assert _hex_rows(out) == [FIPS197_C3_CIPHER]


def test_aes_ecb_several_blocks_in_one_call_are_each_encrypted_independently() -> None:
    # The same block three times gives the same ciphertext three times: ECB, no chaining, no IV.
    plain = _blocks(FIPS197_C3_PLAIN, "00" * 16, FIPS197_C3_PLAIN, FIPS197_C3_PLAIN)
    out = aes_ecb(Key("network", FIPS197_C3_KEY), plain)
    assert _hex_rows(out)[0] == _hex_rows(out)[2] == _hex_rows(out)[3] == FIPS197_C3_CIPHER
    single = aes_ecb(Key("network", FIPS197_C3_KEY), plain[1:2])
    assert _hex_rows(out)[1] == _hex_rows(single)[0]


def test_aes_ecb_nist_sp800_38a_f15_ecb_aes256_four_blocks() -> None:
    out = aes_ecb(Key("network", SP800_38A_KEY), _blocks(*SP800_38A_PLAIN))
    assert _hex_rows(out) == SP800_38A_CIPHER


def test_aes_ecb_nist_vectors_in_reverse_order_give_reversed_ciphertexts() -> None:
    out = aes_ecb(Key("network", SP800_38A_KEY), _blocks(*reversed(SP800_38A_PLAIN)))
    assert _hex_rows(out) == list(reversed(SP800_38A_CIPHER))


def test_aes_ecb_accepts_a_non_contiguous_view() -> None:
    plain = _blocks(*SP800_38A_PLAIN)[::2]  # rows 0 and 2, a strided view
    out = aes_ecb(Key("network", SP800_38A_KEY), plain)
    assert _hex_rows(out) == [SP800_38A_CIPHER[0], SP800_38A_CIPHER[2]]


def test_aes_ecb_rejects_rows_that_are_not_16_bytes() -> None:
    with pytest.raises(ValueError, match="16"):
        aes_ecb(Key("network", SP800_38A_KEY), np.zeros((2, 15), dtype=np.uint8))


# --- HKDF-SHA256 (key derivation) and HMAC-SHA256 -----------------------------------------------


def test_hkdf_sha256_rfc5869_test_case_1() -> None:
    okm = HKDF(
        algorithm=hashes.SHA256(),
        length=42,
        salt=bytes(range(0x0D)),
        info=bytes(range(0xF0, 0xFA)),
    ).derive(b"\x0b" * 22)
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


def test_hmac_sha256_rfc4231_test_case_2() -> None:
    mac = hmac.HMAC(b"Jefe", hashes.SHA256())
    mac.update(b"what do ya want for nothing?")
    assert mac.finalize().hex() == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


@pytest.mark.parametrize("purpose", ["stage1", "project/proj-1", "project/other", "ü-purpose"])
def test_derive_is_hkdf_sha256_with_salt_pfl_hkdf_v1_and_info_purpose(purpose: str) -> None:
    master = Key("ttp", bytes(range(32, 64)))
    expected = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"pfl/hkdf/v1", info=purpose.encode("utf-8")
    ).derive(master.material)
    derived = derive(master, purpose)
    assert derived.material == expected
    assert len(derived.material) == 32


def test_stage1_and_project_keys_use_their_documented_purposes() -> None:
    master = Key("network", bytes(range(32)))
    assert stage1_key(master).material == derive(master, "stage1").material
    assert project_key(master, "proj-1").material == derive(master, "project/proj-1").material


# --- the engine's own known answers (all-zero keys) ----------------------------------------

ZERO_NETWORK = Key("network", bytes(32))
ZERO_TTP = Key("ttp", bytes(32))
PINNED_NETWORK_KEY_ID = "af2e96da"
PINNED_P1 = {
    "111222333": "P1v1.af2e96da.01e73c16a277e8e007437a624db671aa",
    "123456782": "P1v1.af2e96da.7261275fc5028cb09cf282ff9a9faffe",
}
PINNED_PROJECT_KEY_ID = "fbdcc975"  # project "proj-1" under the all-zero TTP key
PINNED_P2 = {
    "111222333": "P2v1.fbdcc975.2dbea2cf3500cb5e816d6599f421f80e",
    "123456782": "P2v1.fbdcc975.37fede8759b264618ad90874de11c5fd",
}


def _p1_labelled(network_key: Key, raw_bsns: list[str | None]) -> list[str]:
    """Stage 1 as the supplier step computes it: parse the column, AES the valid ones, label."""
    value, status = parse_bsn_column(pl.Series(raw_bsns, dtype=pl.String))
    assert (status == "valid").all()
    p1 = p1_from_bsn(stage1_key(network_key), value)
    return encode_labelled(p1, P1_SCHEME, network_key.id).to_list()


def test_key_id_of_the_all_zero_key_is_pinned() -> None:
    assert ZERO_NETWORK.id == key_id(bytes(32)) == PINNED_NETWORK_KEY_ID


def test_stage1_pseudonyms_of_the_all_zero_network_key_are_pinned() -> None:
    assert _p1_labelled(ZERO_NETWORK, list(PINNED_P1)) == list(PINNED_P1.values())


def test_stage1_pseudonym_of_an_odd_spelling_equals_that_of_the_normalised_bsn() -> None:
    # data-contract.md: spaces, dots and hyphens are removed before the BSN is pseudonymised.
    assert _p1_labelled(ZERO_NETWORK, ["111 222 333", "1234.56.782"]) == list(PINNED_P1.values())


def test_stage1_pseudonym_is_aes_of_tag_and_big_endian_bsn_under_the_hkdf_stage1_key() -> None:
    # The construction documented in prf.py, recomputed with `cryptography` alone.
    k1 = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"pfl/hkdf/v1", info=b"stage1").derive(
        bytes(32)
    )
    for bsn, labelled in PINNED_P1.items():
        block = b"pfl-bsn\x01" + int(bsn).to_bytes(8, "big")
        encryptor = Cipher(algorithms.AES(k1), modes.ECB()).encryptor()
        body = (encryptor.update(block) + encryptor.finalize()).hex()
        assert labelled == f"{P1_SCHEME}.{PINNED_NETWORK_KEY_ID}.{body}"


def test_project_pseudonyms_of_the_all_zero_ttp_key_are_pinned() -> None:
    raw_p1, _ = decode_labelled(
        pl.Series(list(PINNED_P1.values())), scheme=P1_SCHEME, source="pinned"
    )
    k_proj = project_key(ZERO_TTP, "proj-1")
    assert k_proj.id == PINNED_PROJECT_KEY_ID
    p2 = encode_labelled(p2_from_p1(k_proj, raw_p1), P2_SCHEME, k_proj.id)
    assert p2.to_list() == list(PINNED_P2.values())


def test_encode_then_decode_labelled_round_trips_the_pinned_pseudonyms() -> None:
    labelled = pl.Series(list(PINNED_P1.values()))
    raw, kids = decode_labelled(labelled, scheme=P1_SCHEME, source="pinned")
    assert raw.shape == (2, 16)
    assert kids == [PINNED_NETWORK_KEY_ID]
    assert encode_labelled(raw, P1_SCHEME, PINNED_NETWORK_KEY_ID).to_list() == labelled.to_list()
