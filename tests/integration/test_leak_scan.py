"""Leak scan (issue 3): what each role receives holds nothing it must never see.

``shared/spec/pseudonymisation.md``, "Roles": the TTP never sees a BSN or health content; the
research environment never sees a BSN or a stage-1 pseudonym. ``data-contract.md``: a BSN never
leaves the supplier's step — not in files, logs or messages.

After both supplier steps and the TTP step on the tiny extracts, every file a role receives is
scanned: its raw bytes (so Parquet metadata and JSON text are covered), and for Parquet also its
column names and every cell of every column rendered as text.

How a needle matches (:func:`scan_files`):

- BSNs match as a *whole run of digits* (not flanked by other digits; an 8-digit run counts as
  its zero-padded form). Plain substring search would report chance hits: 13-character claim ids
  hold four 9-digit windows each, and one of ~10⁴ input BSNs turns up in ~5 of the 153,000 claim
  ids of the tiny extract. For the same reason the 32-hex body of a labelled value
  (``TKv1.<key id>.<32 hex>``) is masked before looking for digit runs: it is random or AES output,
  and in ~3% of runs some 9-digit run inside one of ~50,000 bodies would equal an input BSN.
  Those bodies are searched for stage-1 pseudonyms instead. Binary cells (stage-1 pseudonyms as
  16 raw bytes, Bloom filters) likewise: their hex form is searched for pseudonyms only, and their
  bytes as text for everything (a BSN stored as the bytes of its digits is found there). A CI run
  failed on a 9-digit run inside the hex of a stage-1 pseudonym that equalled an input BSN.
- Everything else (BSNs as the extract spelled them, ``1234.56.789``; stage-1 pseudonyms and
  their bodies; patient and claim ids) matches as a plain substring, or by a regex (ISO dates).

Findings name the file and the kind of needle, never the value that matched.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl
import pytest

from extracts.bsn import BsnStatus, bsn_status, normalise_bsn
from extracts.contract import SUPPLIERS
from extracts.generator.run import GenerationResult
from pseudonymisation.encodings import BLOOM_FIELDS, TOKEN_FIELDS
from pseudonymisation.keys import Key, generate_key
from pseudonymisation.matching import METHODS
from pseudonymisation.prf import P1_SCHEME, encode_labelled, p1_from_bsn, stage1_key
from pseudonymisation.supplier import BSN_TABLES, SupplierResult, run_supplier_step
from pseudonymisation.ttp import TtpResult, run_ttp_step
from identifier_needles import identifier_needles, scan_readable

_LABELLED_BODY = r"([A-Za-z0-9]{4}\.[0-9a-f]{8}\.)[0-9a-f]{32}"


@dataclass(frozen=True)
class Needles:
    """One kind of value that must not occur, and how it matches (see the module docstring)."""

    kind: str
    values: frozenset[str] = frozenset()
    whole_digit_runs: bool = False
    pattern: str | None = None

    def matches(self, texts: pl.Series) -> pl.Series:
        """Per text: does a needle of this kind occur in it."""
        if self.pattern is not None:
            return texts.str.contains(self.pattern).fill_null(False)
        if not self.values:
            return pl.Series([False] * len(texts))
        if not self.whole_digit_runs:
            return texts.str.contains_any(sorted(self.values)).fill_null(False)
        runs = (
            pl.DataFrame({"text": texts})
            .with_row_index("row")
            .select(
                "row",
                pl.col("text")
                .str.replace_all(_LABELLED_BODY, "${1}")
                .str.extract_all(r"[0-9]+")
                .alias("run"),
            )
            .explode("run")
            .with_columns(
                pl.when(pl.col("run").str.len_bytes() == 8)
                .then(pl.lit("0") + pl.col("run"))
                .otherwise("run")
            )
        )
        hits = runs.filter(pl.col("run").is_in(sorted(self.values)))["row"]
        return pl.int_range(len(texts), eager=True).is_in(hits.implode())

    def found_in(self, texts: pl.Series) -> bool:
        return bool(self.matches(texts).any())


def _column_as_text(column: pl.Series) -> pl.Series:
    try:
        return column.cast(pl.String)
    except pl.exceptions.PolarsError:  # nested columns: render each value
        return pl.Series([None if v is None else str(v) for v in column.to_list()], dtype=pl.String)


def _texts(path: Path) -> pl.DataFrame:
    """All text of a file: raw bytes (latin-1, one byte per character), Parquet names and cells.

    Column ``random`` marks the hex form of binary cells (keyed pseudonyms, Bloom filters): PRF or
    AES output, searched for pseudonyms but not for digit runs (see the module docstring). The
    same cells are also rendered byte for byte, which finds a BSN stored as its digits' bytes.
    """
    parts = [pl.Series([path.read_bytes().decode("latin-1")], dtype=pl.String)]
    random = []
    if path.suffix == ".parquet":
        frame = pl.read_parquet(path)
        parts.append(pl.Series(frame.columns, dtype=pl.String))
        for name in frame.columns:
            column = frame[name]
            if column.dtype == pl.Binary:
                values = column.drop_nulls().unique()
                random.append(values.bin.encode("hex"))
                parts.append(
                    pl.Series([v.decode("latin-1") for v in values.to_list()], dtype=pl.String)
                )
            else:
                parts.append(_column_as_text(column).drop_nulls().unique())
    plain, hexed = pl.concat(parts), pl.concat(random or [pl.Series([], dtype=pl.String)])
    return pl.DataFrame(
        {
            "text": pl.concat([plain, hexed]),
            "random": [False] * len(plain) + [True] * len(hexed),
        }
    )


def scan_files(paths: Iterable[Path], needles: Iterable[Needles]) -> list[tuple[str, str]]:
    """(file, needle kind) for every needle kind found in a file; never the matching value.

    The texts of all files are searched together: building a matcher for 10⁵ needles costs
    about a second, so it is built once per kind, not once per file.
    """
    paths = list(paths)
    texts = [_texts(path).with_columns(owner=pl.lit(i, pl.Int64)) for i, path in enumerate(paths)]
    if not texts:
        return []
    everything = pl.concat(texts)
    found = set()
    for needle in needles:
        # Digit runs inside the hex of random bytes are chance, not a BSN (module docstring).
        texts = everything.filter(~pl.col("random")) if needle.whole_digit_runs else everything
        found |= {
            (str(paths[i]), needle.kind)
            for i in texts["owner"].filter(needle.matches(texts["text"])).unique()
        }
    return sorted(found)


def _files(*folders: Path) -> list[Path]:
    paths = sorted(p for folder in folders for p in folder.rglob("*") if p.is_file())
    assert paths, f"nothing to scan in {folders}"
    return paths


class _Records(logging.Handler):
    """Every log record, at DEBUG (caplog's mechanism, at module scope: one run for all tests)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass(frozen=True)
class Pipeline:
    extracts: Path
    network: Key
    ehr: SupplierResult
    claims: SupplierResult
    ttp: TtpResult
    log: list[logging.LogRecord]

    @property
    def ttp_receives(self) -> list[Path]:
        return _files(self.ehr.out / "for_ttp", self.claims.out / "for_ttp")

    @property
    def ttp_writes(self) -> list[Path]:
        """The TTP's outputs: token maps, manifests, report; they go to the research environment."""
        return _files(self.ttp.out)

    @property
    def research_receives(self) -> list[Path]:
        return (
            _files(self.ehr.out / "for_research", self.claims.out / "for_research")
            + self.ttp_writes
        )


@pytest.fixture(scope="module")
def pipeline(tiny_extracts: GenerationResult, tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    root = tmp_path_factory.mktemp("leak_scan")
    network = generate_key(root / "keys" / "network.key", "network")
    ttp_key = generate_key(root / "keys" / "ttp.key", "ttp")
    extracts = tiny_extracts.out
    logger, handler = logging.getLogger(), _Records()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        ehr = run_supplier_step(extracts / "ehr", "ehr", network, root / "ehr")
        claims = run_supplier_step(extracts / "claims", "claims", network, root / "claims")
        ttp = run_ttp_step(
            {"ehr": ehr.out / "for_ttp", "claims": claims.out / "for_ttp"},
            ttp_key,
            "leak-scan",
            root / "ttp",
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return Pipeline(extracts, network, ehr, claims, ttp, handler.records)


def _raw_bsns(extracts: Path) -> pl.DataFrame:
    """Every value of the extracts' bsn columns: raw ``b``, normalised ``n``, status ``s``."""
    raw = pl.concat(
        pl.read_parquet(extracts / supplier / f"{table}.parquet", columns=["bsn"])
        for supplier, tables in BSN_TABLES.items()
        for table in tables
    ).unique()
    return raw.select(
        pl.col("bsn").alias("b"), normalise_bsn(pl.col("bsn")).alias("n")
    ).with_columns(bsn_status(pl.col("n")).alias("s"))


@pytest.fixture(scope="module")
def bsn_needles(pipeline: Pipeline) -> list[Needles]:
    valid = _raw_bsns(pipeline.extracts).filter(pl.col("s") == BsnStatus.VALID.value)
    spelled = {b.strip() for b in valid["b"].to_list() if len(b.strip()) > 9}
    assert len(spelled) > 10, "the tiny extract has odd spellings of valid BSNs"
    return [
        Needles("input BSN", frozenset(valid["n"].to_list()), whole_digit_runs=True),
        Needles("input BSN as spelled in the extract", frozenset(spelled)),
    ]


@pytest.fixture(scope="module")
def p1_needles(pipeline: Pipeline) -> list[Needles]:
    # Stage-1 pseudonyms travel to the TTP as 16 raw bytes; in text they would appear as hex.
    p1 = pl.concat(
        pl.read_parquet(r.out / "for_ttp" / "identifiers.parquet")["p1"]
        for r in (pipeline.ehr, pipeline.claims)
    ).unique().bin.encode("hex")
    # Cross-check: these are the stage-1 pseudonyms of exactly the input BSNs.
    valid = _raw_bsns(pipeline.extracts).filter(pl.col("s") == BsnStatus.VALID.value)["n"].unique()
    recomputed = encode_labelled(
        p1_from_bsn(stage1_key(pipeline.network), valid.cast(pl.Int64).to_numpy()),
        P1_SCHEME,
        pipeline.network.id,
    )
    assert set(p1.to_list()) == set(recomputed.str.slice(14).to_list())
    return [
        Needles("stage-1 pseudonym", frozenset(recomputed.to_list())),
        Needles("stage-1 pseudonym body", frozenset(p1.to_list())),
    ]


@pytest.fixture(scope="module")
def content_needles(pipeline: Pipeline) -> list[Needles]:
    ids = {
        "patient_id": pl.read_parquet(pipeline.extracts / "ehr" / "patients.parquet")["patient_id"],
        "claim_id": pl.read_parquet(pipeline.extracts / "claims" / "claims.parquet")["claim_id"],
    }
    return [
        *(Needles(kind, frozenset(values.drop_nulls().to_list())) for kind, values in ids.items()),
        Needles("ISO date", pattern=r"\b[12][0-9]{3}-[01][0-9]-[0-3][0-9]\b"),
    ]


# --- the scanner itself finds what it looks for (positive controls) -------------------------------


def test_scan_files_finds_every_kind_of_needle_in_the_raw_extracts(
    pipeline: Pipeline, bsn_needles: list[Needles], content_needles: list[Needles]
) -> None:
    patients = pipeline.extracts / "ehr" / "patients.parquet"
    insured = pipeline.extracts / "claims" / "insured.parquet"
    claims = pipeline.extracts / "claims" / "claims.parquet"
    found = set(scan_files([patients, insured, claims], [*bsn_needles, *content_needles]))
    assert {(str(p), "input BSN") for p in (patients, insured, claims)} <= found
    assert (str(patients), "input BSN as spelled in the extract") in found
    assert {
        (str(patients), "patient_id"),
        (str(claims), "claim_id"),
        (str(claims), "ISO date"),
    } <= found


def test_scan_files_finds_stage1_pseudonyms_in_the_identifier_files(
    pipeline: Pipeline, p1_needles: list[Needles]
) -> None:
    found = scan_files(pipeline.ttp_receives, p1_needles)
    for result in (pipeline.ehr, pipeline.claims):
        path = str(result.out / "for_ttp" / "identifiers.parquet")
        # Stored as 16 raw bytes beside a label column: found through their hex form.
        assert (path, "stage-1 pseudonym body") in set(found)


def test_scan_files_finds_planted_leaks_and_reports_no_values(
    pipeline: Pipeline, bsn_needles: list[Needles], p1_needles: list[Needles], tmp_path: Path
) -> None:
    bsn = sorted(bsn_needles[0].values)[0]
    p1 = sorted(p1_needles[0].values)[0]
    planted = {
        "in_json.json": lambda p: p.write_text(json.dumps({"note": f"row with bsn={bsn};"})),
        "as_integer.parquet": lambda p: pl.DataFrame({"x": [int(bsn)]}).write_parquet(p),
        "in_id.parquet": lambda p: pl.DataFrame({"id": [f"P{bsn}", "x"]}).write_parquet(p),
        "as_column_name.parquet": lambda p: pl.DataFrame({f"c_{bsn}": [1]}).write_parquet(p),
        "p1_body.parquet": lambda p: pl.DataFrame(
            {"token": [f"TKv1.00000000.{p1[14:]}"]}
        ).write_parquet(p),
        "clean.parquet": lambda p: pl.DataFrame(
            {"token": ["TKv1.00000000." + "0" * 32]}
        ).write_parquet(p),
        # 16 random bytes whose hex form happens to hold a BSN's digits: chance, not a leak.
        "hex_chance.parquet": lambda p: pl.DataFrame(
            {"p1": [bytes.fromhex(f"a{bsn}" + "bc" * 11)]}
        ).write_parquet(p),
        # A BSN stored as the bytes of its digits in a binary column is a leak.
        "as_bytes.parquet": lambda p: pl.DataFrame(
            {"raw": [b"\x00" + bsn.encode() + b"\x00"]}
        ).write_parquet(p, compression="zstd"),
    }
    for name, write in planted.items():
        write(tmp_path / name)
    found = scan_files(sorted(tmp_path.iterdir()), [*bsn_needles, *p1_needles])
    kinds = {Path(f).name: k for f, k in found}
    assert {n: kinds.get(n) for n in planted} == {
        "in_json.json": "input BSN",
        "as_integer.parquet": "input BSN",
        "in_id.parquet": "input BSN",
        "as_column_name.parquet": "input BSN",
        "p1_body.parquet": "stage-1 pseudonym body",
        "clean.parquet": None,
        "hex_chance.parquet": None,
        "as_bytes.parquet": "input BSN",
    }
    assert not any(bsn in f + k or p1[14:] in f + k for f, k in found)


# --- what each role receives ----------------------------------------------------------------------


def test_no_input_bsn_in_any_file_the_ttp_receives_or_writes(
    pipeline: Pipeline, bsn_needles: list[Needles]
) -> None:
    assert scan_files(pipeline.ttp_receives + pipeline.ttp_writes, bsn_needles) == []


def test_no_input_bsn_in_any_file_the_research_environment_receives(
    pipeline: Pipeline, bsn_needles: list[Needles]
) -> None:
    assert scan_files(pipeline.research_receives, bsn_needles) == []


def test_no_stage1_pseudonym_in_any_file_the_research_environment_receives(
    pipeline: Pipeline, p1_needles: list[Needles]
) -> None:
    assert scan_files(pipeline.research_receives, p1_needles) == []


def test_supplier_report_holds_no_bsn_and_no_stage1_pseudonym(
    pipeline: Pipeline, bsn_needles: list[Needles], p1_needles: list[Needles]
) -> None:
    # It stays with the supplier, but is a report of counts: no values at all.
    reports = [r.out / "supplier_report.json" for r in (pipeline.ehr, pipeline.claims)]
    assert scan_files(reports, [*bsn_needles, *p1_needles]) == []


def _json_keys(value: object) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from _json_keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _json_keys(inner)


def test_ttp_files_hold_tokens_pseudonyms_and_counts_only(
    pipeline: Pipeline, content_needles: list[Needles]
) -> None:
    files = pipeline.ttp_receives + pipeline.ttp_writes
    content_columns = {c for s in SUPPLIERS.values() for t in s.tables for c in t.column_names}
    for path in files:
        if path.suffix == ".parquet":
            # Issue 13: keyed fallback encodings (for the TTP) and how each token was linked.
            allowed = {"token", "p1", "p1_label", "p2", "link_method", *TOKEN_FIELDS, *BLOOM_FIELDS}
            assert pl.read_parquet_schema(path).keys() <= allowed, path
        else:
            assert path.suffix == ".json", path
            keys = set(_json_keys(json.loads(path.read_text())))
            # The cascade's method names (fixed labels: "insurance_number") key its counts.
            assert not (keys - set(METHODS)) & content_columns, path
    assert scan_files(files, content_needles) == []


def test_no_bsn_or_stage1_pseudonym_in_any_log_record(
    pipeline: Pipeline, bsn_needles: list[Needles], p1_needles: list[Needles]
) -> None:
    texts = []
    for record in pipeline.log:
        texts += [record.getMessage(), str(record.args), record.exc_text or ""]
        if record.exc_info:
            texts.append(logging.Formatter().formatException(record.exc_info))
    series = pl.Series(texts or [""], dtype=pl.String)
    assert [n.kind for n in [*bsn_needles, *p1_needles] if n.found_in(series)] == []


# --- a whole demo run: every file, every log line, everything printed (issue 6) -------------------

# What each folder of the demo's work folder holds by design (its role's working data); every
# other file, every JSON report and manifest, every log and everything printed is held to all
# needles. The extracts (and their ground truth) and the demo keys are the suppliers' own.
_ROLE_FOLDERS: dict[str, frozenset[str]] = {
    "pseudonymisation/*/for_ttp": frozenset({"token", "stage-1 pseudonym", "stage-1 pseudonym body"}),
    "pseudonymisation/*/for_research": frozenset({"token", "patient_id", "claim_id", "birth date"}),
    "pseudonymisation/ttp": frozenset({"token", "project pseudonym", "project pseudonym body"}),
    "linked": frozenset({"project pseudonym", "project pseudonym body", "patient_id", "claim_id",
                         "birth date"}),
}
_NOT_SCANNED = ("extracts", "keys")


@dataclass(frozen=True)
class DemoRun:
    work: Path
    printed: str


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    root = tmp_path_factory.mktemp("leak_scan_demo")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "pfl-demo"), "preset=tiny", f"work={root / 'work'}"],
        capture_output=True, text=True, cwd=root, check=False, timeout=600,
        env={**{k: v for k, v in os.environ.items() if k != "PFL_DEBUG"}, "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return DemoRun(root / "work", proc.stdout + proc.stderr)


def _values_needles(kind: str, values: pl.Series) -> list[Needles]:
    """Needles for the values of one column, whatever its type (labelled strings, integers, bytes)."""
    values = values.drop_nulls().unique()
    if values.dtype == pl.Binary:
        return [Needles(kind, frozenset(values.bin.encode("hex").to_list()))]
    if values.dtype.is_integer():  # e.g. 64-bit record tokens; a sign is not part of a digit run
        return [Needles(kind, frozenset(values.abs().cast(pl.String).to_list()), whole_digit_runs=True)]
    text = values.cast(pl.String)
    needles = [Needles(kind, frozenset(text.to_list()))]
    bodies = text.str.extract(r"\.([0-9a-f]{16,})$").drop_nulls()
    if len(bodies):  # labelled values: their random body alone must not occur either
        needles.append(Needles(f"{kind} body", frozenset(bodies.to_list())))
    return needles


@pytest.fixture(scope="module")
def demo_needles(demo_run: DemoRun) -> list[Needles]:
    work = demo_run.work
    extracts = work / "extracts"
    valid = _raw_bsns(extracts).filter(pl.col("s") == BsnStatus.VALID.value)
    pseudo = work / "pseudonymisation"
    identifiers = pl.concat(pl.read_parquet(pseudo / s / "for_ttp" / "identifiers.parquet") for s in ("ehr", "claims"))
    token_maps = pl.concat(pl.read_parquet(pseudo / "ttp" / s / "token_map.parquet") for s in ("ehr", "claims"))
    births = pl.concat([
        pl.read_parquet(extracts / "ehr" / "patients.parquet")["birth_date"],
        pl.read_parquet(extracts / "claims" / "insured.parquet")["birth_date"],
    ]).drop_nulls().unique().dt.to_string("%Y-%m-%d")
    needles = [
        Needles("input BSN", frozenset(valid["n"].to_list()), whole_digit_runs=True),
        Needles("input BSN as spelled in the extract",
                frozenset(b.strip() for b in valid["b"].to_list() if len(b.strip()) > 9)),
        *_values_needles("stage-1 pseudonym", identifiers["p1"]),
        *_values_needles("token", pl.concat([identifiers["token"], token_maps["token"]])),
        *_values_needles("project pseudonym", token_maps["p2"]),
        Needles("patient_id", frozenset(pl.read_parquet(extracts / "ehr" / "patients.parquet")["patient_id"].to_list())),
        Needles("claim_id", frozenset(pl.read_parquet(extracts / "claims" / "claims.parquet")["claim_id"].to_list())),
        Needles("birth date", frozenset(births.to_list())),
    ]
    # The stage-1 pseudonym travels as 16 raw bytes: its needle is the hex text, a "body".
    return [replace(n, kind="stage-1 pseudonym body") if n.kind == "stage-1 pseudonym" else n for n in needles]


def _allowed(work: Path, path: Path) -> frozenset[str]:
    if path.suffix == ".json":
        return frozenset()  # reports and manifests: counts, ids of keys and batches, never values
    relative = path.relative_to(work)
    for pattern, kinds in _ROLE_FOLDERS.items():
        if relative.match(f"{pattern}/*") or relative.match(f"{pattern}/*/*"):
            return kinds
    return frozenset()


def test_demo_run_printed_nothing_identifying(demo_run: DemoRun, demo_needles: list[Needles]) -> None:
    assert "linkage" in demo_run.printed  # the run did print its summary
    printed = pl.Series([demo_run.printed], dtype=pl.String)
    assert [n.kind for n in demo_needles if n.found_in(printed)] == []


def test_demo_run_files_hold_nothing_beyond_their_role(demo_run: DemoRun, demo_needles: list[Needles]) -> None:
    work = demo_run.work
    files = [p for p in work.rglob("*") if p.is_file() and p.relative_to(work).parts[0] not in _NOT_SCANNED]
    logs = [p for p in files if p.relative_to(work).parts[0] == "logs"]
    assert any(p.suffix == ".log" for p in logs) and any(p.name == "config.yaml" for p in logs)
    assert any(p.parts[-2:] == ("study", "care_use.parquet") for p in files)
    found = scan_files(files, demo_needles)
    leaks = sorted((str(Path(f).relative_to(work)), kind) for f, kind in found
                   if kind not in _allowed(work, Path(f)))
    assert leaks == []
    # Positive control: the role folders do hold what they are for, so the needles work here.
    held = {(Path(f).relative_to(work).parts[0], kind) for f, kind in found}
    assert {("pseudonymisation", "token"), ("linked", "patient_id"), ("linked", "project pseudonym")} <= held


def test_demo_run_holds_no_identifier_outside_the_extracts(demo_run: DemoRun) -> None:
    """Issue 13, item 8: names, PC6, house numbers and insurance numbers stay in the extracts.

    Every file of the demo's work folder but the extracts and keys (the TTP's encodings, every role's
    outputs, the release, the logs and Hydra's configs) and everything printed: no identifier of
    ``patients`` or ``insured`` as a whole word of its readable text (:mod:`tests.identifier_needles`).
    """
    needles = identifier_needles(demo_run.work / "extracts")
    work = demo_run.work
    files = [p for p in work.rglob("*") if p.is_file() and p.relative_to(work).parts[0] not in _NOT_SCANNED]
    assert any(p.suffix == ".log" for p in files) and any(p.name == "encodings.parquet" for p in files)
    found = [(str(Path(f).relative_to(work)), kind) for f, kind in scan_readable(files, needles)]
    printed = pl.Series([demo_run.printed], dtype=pl.String)
    assert found + [("printed", n.kind) for n in needles if n.found_in(printed)] == []
