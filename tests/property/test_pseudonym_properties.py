"""Property tests of the pseudonyms (``shared/spec/pseudonymisation.md``, steps 1 and 2).

The reference for BSN rules is :mod:`extracts.bsn` (data-contract.md, "Identifiers");
:func:`pseudonymisation.prf.parse_bsn_column` has a fast path of its own, which must never disagree.
"""

from __future__ import annotations

import re
import time

import numpy as np
import polars as pl
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from extracts.bsn import BsnStatus, bsn_status, normalise_bsn, valid_bsns_from_prefixes
from pseudonymisation.errors import KeyMismatchError, PseudonymisationError
from pseudonymisation.keys import Key
from pseudonymisation.prf import (
    P1_SCHEME,
    P2_SCHEME,
    decode_labelled,
    encode_labelled,
    p1_from_bsn,
    p2_from_p1,
    parse_bsn_column,
    project_key,
    random_tokens,
    stage1_key,
)

_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2)
_LABELLED = re.compile(r"(P1v1|P2v1|TKv1)\.[0-9a-f]{8}\.[0-9a-f]{32}")


def _complete(prefix: int) -> str | None:
    """The valid BSN with these 8 leading digits, by the contract's 11-test, or None."""
    digits = f"{prefix:08d}"
    d9 = sum(w * int(d) for w, d in zip(_WEIGHTS, digits, strict=True)) % 11
    return None if d9 == 10 or prefix == 0 else f"{digits}{d9}"


valid_bsns = st.integers(1, 99_999_999).map(_complete).filter(lambda b: b is not None)
keys = st.binary(min_size=32, max_size=32)
projects = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12
).filter(lambda p: p.replace("-", "").replace("_", ""))

_SEPARATORS = [" ", ".", "-", "\t", "\n", "\u00a0", "\u2007", "\u3000", "  "]


@st.composite
def odd_spellings(draw: st.DrawFn) -> str:
    """A valid or 8-digit value with separators between digits, as GP systems deliver them."""
    digits = draw(st.one_of(valid_bsns, st.integers(0, 99_999_999).map(lambda v: f"{v:08d}")))
    out = []
    for d in digits:
        out.append(d)
        out.append(draw(st.sampled_from(["", "", "", *_SEPARATORS])))
    return (
        draw(st.sampled_from(["", " ", "\t"]))
        + "".join(out)
        + draw(st.sampled_from(["", " ", "\n"]))
    )


_ODD_ALPHABET = list("0123456789 .-+_,/eExX\t\n\r") + [
    "\u00a0",
    "\u2007",
    "\u3000",
    "\u200b",
    "\ufeff",  # unicode spaces (and two non-spaces)
    "٠",
    "١",
    "٢",
    "٣",
    "٤",
    "٥",
    "٦",
    "٧",
    "٨",
    "٩",  # Arabic-Indic digits
    "０",
    "１",
    "２",
    "９",
    "𝟗",
    "²",
    "½",  # fullwidth, mathematical, superscript digits
    "\u2212",
    "\u2010",
    "\u2013",  # minus sign, hyphen, en dash
]

raw_bsn_text = st.one_of(
    st.none(),
    valid_bsns,
    odd_spellings(),
    st.integers(0, 99_999_999).map(lambda v: f"{v:08d}"),  # 8 digits: padded with one zero
    st.integers(-(10**10), 10**10).map(str),  # signs, short and long numbers
    valid_bsns.map(lambda b: "+" + b[1:]),  # 9 bytes with a sign
    valid_bsns.map(lambda b: "-" + b[1:]),
    st.sampled_from(
        ["", " ", "000000000", "00000000", "-00000000", "+00000000", "0000-0000", "111222334"]
    ),
    st.text(alphabet=_ODD_ALPHABET, max_size=13),
    st.text(max_size=12),  # anything at all
)


def _reference(values: list[str | None]) -> tuple[list[str], list[int | None]]:
    """Statuses and (for valid rows) values by the reference rules of extracts.bsn."""
    frame = pl.DataFrame({"b": values}, schema={"b": pl.String}).select(
        normalise_bsn(pl.col("b")).alias("n")
    )
    frame = frame.with_columns(bsn_status(pl.col("n")).alias("s"))
    statuses = frame["s"].to_list()
    normalised = frame["n"].to_list()
    return statuses, [
        int(n) if s == BsnStatus.VALID.value else None
        for n, s in zip(normalised, statuses, strict=True)
    ]


def _p1_raw(network: Key, bsns: list[str]) -> np.ndarray:
    value, status = parse_bsn_column(pl.Series(bsns, dtype=pl.String))
    assert (status == BsnStatus.VALID.value).all()
    return p1_from_bsn(stage1_key(network), value)


def _rows(raw: np.ndarray) -> set[bytes]:
    return {bytes(r) for r in raw}


# --- determinism and unlinkability ----------------------------------------------------------------


@given(material=keys, bsns=st.lists(valid_bsns, min_size=1, max_size=30))
def test_p1_is_deterministic_for_one_network_key(material: bytes, bsns: list[str]) -> None:
    network = Key("network", material)
    first = encode_labelled(_p1_raw(network, bsns), P1_SCHEME, network.id)
    again = encode_labelled(_p1_raw(Key("network", bytes(material)), bsns), P1_SCHEME, network.id)
    assert first.to_list() == again.to_list()
    # equal BSNs, equal P1; distinct BSNs, distinct P1
    assert first.n_unique() == len(set(bsns))


@given(a=keys, b=keys, bsns=st.lists(valid_bsns, min_size=1, max_size=30))
def test_p1_of_different_network_keys_are_disjoint(a: bytes, b: bytes, bsns: list[str]) -> None:
    assume(a != b)
    # Compared without labels: the bodies themselves must not link across keys.
    assert _rows(_p1_raw(Key("network", a), bsns)).isdisjoint(
        _rows(_p1_raw(Key("network", b), bsns))
    )


@given(
    material=keys,
    first=projects,
    second=projects,
    bsns=st.lists(valid_bsns, min_size=1, max_size=30),
)
def test_p2_of_different_projects_are_disjoint_and_of_one_project_equal(
    material: bytes, first: str, second: str, bsns: list[str]
) -> None:
    assume(first != second)
    p1 = _p1_raw(Key("network", bytes(32)), bsns)
    ttp = Key("ttp", material)
    p2_first = p2_from_p1(project_key(ttp, first), p1)
    p2_second = p2_from_p1(project_key(ttp, second), p1)
    assert _rows(p2_first).isdisjoint(_rows(p2_second))
    assert np.array_equal(p2_first, p2_from_p1(project_key(Key("ttp", bytes(material)), first), p1))


# --- the fast path of parse_bsn_column against the reference rules --------------------------------


@settings(max_examples=200)
@given(st.lists(raw_bsn_text, max_size=25))
def test_parse_bsn_column_agrees_with_the_reference_rules(values: list[str | None]) -> None:
    value, status = parse_bsn_column(pl.Series(values, dtype=pl.String))
    ref_status, ref_value = _reference(values)
    assert status.to_list() == ref_status
    got = [
        int(v) if s == BsnStatus.VALID.value else None
        for v, s in zip(value.tolist(), ref_status, strict=True)
    ]
    assert got == ref_value
    assert (value[(status != BsnStatus.VALID.value).to_numpy()] == 0).all()


@given(st.lists(raw_bsn_text, max_size=25))
def test_parse_bsn_column_of_normalised_values_equals_that_of_raw_values(
    values: list[str | None],
) -> None:
    # The supplier step parses the validator's normalised column; the result must not depend on it.
    raw = pl.Series(values, dtype=pl.String)
    normalised = pl.DataFrame({"b": raw}).select(normalise_bsn(pl.col("b")).alias("b"))["b"]
    twice = pl.DataFrame({"b": normalised}).select(normalise_bsn(pl.col("b")).alias("b"))["b"]
    assert twice.to_list() == normalised.to_list()
    v_raw, s_raw = parse_bsn_column(raw)
    v_norm, s_norm = parse_bsn_column(normalised)
    assert s_raw.to_list() == s_norm.to_list()
    assert np.array_equal(v_raw, v_norm)


@given(st.lists(valid_bsns, max_size=25), st.data())
def test_parse_bsn_column_on_a_sliced_or_chunked_series(
    bsns: list[str], data: st.DataObject
) -> None:
    series = pl.Series(["x", *bsns, None], dtype=pl.String)
    cut = data.draw(st.integers(0, len(series)))
    chunked = pl.concat([series.slice(0, cut), series.slice(cut)], rechunk=False)
    value, status = parse_bsn_column(chunked.slice(1, len(bsns)))
    assert status.to_list() == [BsnStatus.VALID.value] * len(bsns)
    assert value.tolist() == [int(b) for b in bsns]


# --- no collisions on a large sample --------------------------------------------------------------


def test_one_million_distinct_valid_bsns_give_one_million_distinct_p1_and_p2() -> None:
    began = time.perf_counter()
    rng = np.random.default_rng(20240611)
    prefixes = rng.choice(100_000_000, size=1_150_000, replace=False)
    bsns, ok = valid_bsns_from_prefixes(prefixes)
    bsns = bsns[ok][:1_000_000]
    assert len(bsns) == 1_000_000
    assert len(np.unique(bsns)) == 1_000_000
    # Through the real path: strings, the fast parser, stage 1, stage 2.
    value, status = parse_bsn_column(pl.Series(bsns).cast(pl.String).str.zfill(9))
    assert (status == BsnStatus.VALID.value).all()
    assert np.array_equal(value, bsns)
    p1 = p1_from_bsn(stage1_key(Key("network", bytes(range(32)))), value)
    p2 = p2_from_p1(project_key(Key("ttp", bytes(range(1, 33))), "proj-1"), p1)
    for raw in (p1, p2):
        halves = raw.view(">u8")  # two 64-bit halves per pseudonym
        assert pl.DataFrame({"hi": halves[:, 0], "lo": halves[:, 1]}).n_unique() == 1_000_000
    assert time.perf_counter() - began < 10


# --- labelled strings -----------------------------------------------------------------------------

raw_rows = st.lists(st.binary(min_size=16, max_size=16), max_size=20).map(
    lambda rows: np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(-1, 16)
)
key_ids = st.text(alphabet="0123456789abcdef", min_size=8, max_size=8)
schemes = st.sampled_from([P1_SCHEME, P2_SCHEME])


@given(raw=raw_rows, scheme=schemes, kid=key_ids)
def test_decode_labelled_of_encode_labelled_is_the_identity(
    raw: np.ndarray, scheme: str, kid: str
) -> None:
    labelled = encode_labelled(raw, scheme, kid)
    assert all(_LABELLED.fullmatch(v) for v in labelled.to_list())
    decoded, kids = decode_labelled(labelled, scheme=scheme, source="test")
    assert np.array_equal(decoded, raw)
    assert kids == ([kid] if len(raw) else [])


@given(raw=raw_rows.filter(len), kid=key_ids, expected=schemes, actual=schemes)
def test_decode_labelled_rejects_another_scheme_without_echoing_values(
    raw: np.ndarray, kid: str, expected: str, actual: str
) -> None:
    assume(expected != actual)
    labelled = encode_labelled(raw, actual, kid)
    with pytest.raises(KeyMismatchError) as info:
        decode_labelled(labelled, scheme=expected, source="test identifiers")
    message = str(info.value)
    assert "test identifiers" in message
    for value in labelled.to_list():
        assert value[14:] not in message


@st.composite
def corrupted_labelled(draw: st.DrawFn) -> str:
    """A well-formed P1 value with its body damaged, or its length changed."""
    raw = draw(st.binary(min_size=16, max_size=16)).hex()
    value = f"{P1_SCHEME}.{draw(key_ids)}.{raw}"
    how = draw(st.sampled_from(["body", "shorter", "longer"]))
    if how == "body":
        i = draw(st.integers(14, 45))
        bad = draw(st.characters(codec="ascii").filter(lambda c: c not in "0123456789abcdef"))
        return value[:i] + bad + value[i + 1 :]
    if how == "shorter":
        return value[: draw(st.integers(0, 45))]
    return value + draw(st.text(min_size=1, max_size=5))


@given(
    good=raw_rows,
    bad=st.lists(st.one_of(st.none(), corrupted_labelled()), min_size=1, max_size=5),
    data=st.data(),
)
def test_decode_labelled_rejects_garbage_with_a_pseudonymisation_error_by_count(
    good: np.ndarray, bad: list[str | None], data: st.DataObject
) -> None:
    values = encode_labelled(good, P1_SCHEME, "0123abcd").to_list()
    for item in bad:
        values.insert(data.draw(st.integers(0, len(values))), item)
    with pytest.raises(PseudonymisationError) as info:
        decode_labelled(pl.Series(values, dtype=pl.String), scheme=P1_SCHEME, source="garbage file")
    message = str(info.value)
    assert "garbage file" in message
    # Counted, not shown: "<k> value(s) is/are not ..." (wrong lengths are counted before bad hex).
    counted = re.search(r"\b(\d+) (?:value is|values are) not", message)
    assert counted and 1 <= int(counted.group(1)) <= len(bad)
    for value in values:
        if value and len(value) >= 14 + 8:  # long enough not to occur in the message by chance
            assert value not in message and value[14:] not in message


def test_decode_labelled_rejects_bare_bsns_without_echoing_them() -> None:
    with pytest.raises(PseudonymisationError) as info:
        decode_labelled(pl.Series(["111222333", "123456782"]), scheme=P1_SCHEME, source="ids")
    assert "111222333" not in str(info.value) and "123456782" not in str(info.value)


# BUG (prf.py, decode_labelled, `lab[:4].decode()` / `lab[5:13].decode()`): a 46-byte value whose
# label is not ASCII raises UnicodeDecodeError where a character is cut by the byte slice (a crash
# with a traceback instead of a user error, exit code 6), or is accepted when it is not cut.
@pytest.mark.parametrize(
    "value",
    ["€" * 15 + "a", "P1v1.abcdef€" + "0" * 32, "P1v1." + "é" * 4 + "." + "0" * 32],
    ids=["non-ascii-scheme-cut", "non-ascii-key-id-cut", "non-ascii-key-id-whole"],
)
def test_decode_labelled_rejects_a_non_ascii_label_with_a_pseudonymisation_error(
    value: str,
) -> None:
    assert len(value.encode()) == 46
    with pytest.raises(PseudonymisationError):
        decode_labelled(pl.Series([value]), scheme=P1_SCHEME, source="ids")


# BUG (prf.py, decode_labelled): the label's separators and key id are never checked, so a value
# that is not `<scheme>.<8 hex>.<32 hex>` is accepted (and a made-up key id is reported as seen).
@pytest.mark.parametrize(
    "value",
    ["P1v1-0123abcd-" + "0" * 32, "P1v1.zzzzzzzz." + "0" * 32, "P1v1.0123ABCD." + "0" * 32],
    ids=["wrong-separators", "non-hex-key-id", "upper-case-key-id"],
)
def test_decode_labelled_rejects_a_malformed_label(value: str) -> None:
    with pytest.raises(PseudonymisationError):
        decode_labelled(pl.Series([value]), scheme=P1_SCHEME, source="ids")


# BUG (prf.py, decode_labelled, "found schemes {sorted(schemes)}"): for a 46-character value that
# is not a pseudonym, the KeyMismatchError message echoes its first 4 characters, i.e. part of a
# row's value (style.md: messages never hold a row's values).
def test_decode_labelled_message_does_not_echo_part_of_a_malformed_value() -> None:
    value = "111222333" + "0" * 37  # e.g. a BSN column padded into the p1 column
    with pytest.raises(PseudonymisationError) as info:
        decode_labelled(pl.Series([value]), scheme=P1_SCHEME, source="ids")
    assert "1112" not in str(info.value)


@given(n=st.integers(min_value=0, max_value=5_000))
def test_random_tokens_are_unique_64_bit_integers_fresh_per_call(n: int) -> None:
    first, second = random_tokens(n), random_tokens(n)
    assert first.dtype == pl.Int64 and first.len() == n and first.null_count() == 0
    assert first.n_unique() == n
    # Fresh per call: two batches share no token (odds of one repeat ~ n^2 / 2^64).
    assert not first.is_in(second.implode()).any()
