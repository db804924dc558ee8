"""Supplier and TTP steps on generated extracts (``shared/spec/pseudonymisation.md``, steps 1-2).

The generator's ground truth says who is behind every record, so linkage through the TTP's maps is
checked against it, not against the engine's own idea of a person: EHR patient records by
``patient_id`` (``truth/patients``), claims by ``claim_id`` (``truth/claims``), and insured rows by
their row position in the raw file (``truth/insured`` is row-aligned with ``claims/insured``).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from extracts.atomic import file_sha256
from extracts.bsn import BsnStatus, bsn_status, normalise_bsn
from extracts.contract import SUPPLIERS
from extracts.generator.run import GenerationResult
from extracts.validation import validate_extract
from pseudonymisation import supplier as supplier_module
from pseudonymisation import ttp as ttp_module
from pseudonymisation.errors import KeyMismatchError, PseudonymisationError
from pseudonymisation.keys import Key, generate_key
from pseudonymisation.supplier import BSN_TABLES, SupplierResult, run_supplier_step
from pseudonymisation.ttp import TtpResult, run_ttp_step

PROJECT = "proj-a"
VALID = BsnStatus.VALID.value
# Columns of an insured row, all of them except the BSN: with the row's year, they identify a
# person's insured history well enough to attribute it to one truth person (see _claims_persons).
INSURED_SIGNATURE = ["year", "insurer", "birth_date", "sex", "death_date", "wlz_institution"]


@dataclass(frozen=True)
class Run:
    root: Path
    network: Key
    ttp: Key
    ehr: SupplierResult
    claims: SupplierResult
    ttp_result: TtpResult

    def research(self, supplier: str, table: str) -> pl.DataFrame:
        result = self.ehr if supplier == "ehr" else self.claims
        return pl.read_parquet(result.out / "for_research" / f"{table}.parquet")

    def identifiers(self, supplier: str) -> pl.DataFrame:
        result = self.ehr if supplier == "ehr" else self.claims
        return pl.read_parquet(result.out / "for_ttp" / "identifiers.parquet")

    def token_map(self, supplier: str) -> pl.DataFrame:
        return pl.read_parquet(self.ttp_result.out / supplier / "token_map.parquet")


def run_steps(extracts: Path, root: Path, network: Key, ttp: Key) -> Run:
    ehr = run_supplier_step(extracts / "ehr", "ehr", network, root / "supplier_ehr")
    claims = run_supplier_step(extracts / "claims", "claims", network, root / "supplier_claims")
    inputs = {"ehr": ehr.out / "for_ttp", "claims": claims.out / "for_ttp"}
    result = run_ttp_step(inputs, ttp, PROJECT, root / "ttp")
    return Run(root, network, ttp, ehr, claims, result)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Key, Key]:
    folder = tmp_path_factory.mktemp("keys")
    return generate_key(folder / "network.key", "network"), generate_key(folder / "ttp.key", "ttp")


@pytest.fixture(scope="module")
def run(
    tiny_extracts: GenerationResult, keys: tuple[Key, Key], tmp_path_factory: pytest.TempPathFactory
) -> Run:
    return run_steps(tiny_extracts.out, tmp_path_factory.mktemp("run_a"), *keys)


@pytest.fixture(scope="module")
def second_run(
    tiny_extracts: GenerationResult, keys: tuple[Key, Key], tmp_path_factory: pytest.TempPathFactory
) -> Run:
    return run_steps(tiny_extracts.out, tmp_path_factory.mktemp("run_b"), *keys)


def _with_reference_status(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with the reference normalised BSN ``n`` and status ``s`` (extracts.bsn)."""
    return frame.with_columns(normalise_bsn(pl.col("bsn")).alias("n")).with_columns(
        bsn_status(pl.col("n")).alias("s")
    )


def _raw(extracts: Path, supplier: str, table: str) -> pl.DataFrame:
    return pl.read_parquet(extracts / supplier / f"{table}.parquet")


def _distinct_valid_bsns(extracts: Path, supplier: str) -> set[str]:
    frames = [_with_reference_status(_raw(extracts, supplier, t)) for t in BSN_TABLES[supplier]]
    return set(
        pl.concat([f.select("n", "s") for f in frames]).filter(pl.col("s") == VALID)["n"].to_list()
    )


# --- linkage through the TTP reproduces the truth -------------------------------------------------


def _ehr_records(extracts: Path) -> pl.DataFrame:
    """EHR patient records with a valid BSN no other patient record carries, and their person."""
    patients = _with_reference_status(_raw(extracts, "ehr", "patients"))
    unshared = patients.filter(pl.col("s") == VALID).filter(pl.len().over("n") == 1)
    truth = pl.read_parquet(extracts / "truth" / "patients.parquet").select("patient_id", "person")
    return unshared.select("patient_id").join(truth, on="patient_id", how="left", validate="1:1")


def _claims_persons(run: Run, extracts: Path) -> tuple[pl.DataFrame, set[int]]:
    """Claims-side tokens attributed to truth persons, without looking at any BSN: (token, person).

    Tokens of persons with a claim: through ``claim_id``. Tokens of insured-only persons: through
    the multiset of their insured rows, matched to the raw rows of persons without a claim; a
    multiset shared by several such persons is ambiguous and those persons are returned apart.
    """
    truth_claims = pl.read_parquet(extracts / "truth" / "claims.parquet").select(
        "claim_id", "person"
    )
    by_claim = (
        run.research("claims", "claims")
        .filter(pl.col("token").is_not_null())
        .join(truth_claims, on="claim_id", how="left", validate="m:1")
        .select("token", "person")
        .unique()
    )
    assert by_claim["person"].null_count() == 0
    assert by_claim["token"].is_unique().all(), "a claims token stands for several persons"
    assert by_claim["person"].is_unique().all(), "a person has several claims tokens"

    def signature(frame: pl.DataFrame, by: str) -> pl.DataFrame:
        return (
            frame.sort(INSURED_SIGNATURE, nulls_last=True)
            .group_by(by)
            .agg(pl.struct(INSURED_SIGNATURE).alias("rows"))
            .with_columns(pl.col("rows").hash().alias("signature"))
        )

    raw = _with_reference_status(_raw(extracts, "claims", "insured"))
    truth_insured = pl.read_parquet(extracts / "truth" / "insured.parquet")
    assert raw["year"].equals(truth_insured["year"]), "truth/insured is no longer row-aligned"
    raw = raw.with_columns(truth_insured["person"]).filter(pl.col("s") == VALID)
    insured_only = signature(
        raw.filter(~pl.col("person").is_in(by_claim["person"].implode())), "person"
    )
    unique_signature = pl.len().over("signature") == 1
    ambiguous = set(insured_only.filter(~unique_signature)["person"].to_list())
    tokens = run.research("claims", "insured").filter(
        pl.col("token").is_not_null() & ~pl.col("token").is_in(by_claim["token"].implode())
    )
    by_insured = signature(tokens, "token").join(
        insured_only.filter(unique_signature).select("signature", "person"),
        on="signature",
        how="left",
    )
    unattributed = by_insured.filter(pl.col("person").is_null()).height
    assert unattributed == len(ambiguous), "insured-only tokens that match no person's insured rows"
    attributed = pl.concat(
        [by_claim, by_insured.filter(pl.col("person").is_not_null()).select("token", "person")]
    )
    assert len(ambiguous) <= 10 and attributed.height > 10_000
    # Completeness: every person with a valid BSN on an insured row got exactly one token.
    assert set(attributed["person"].to_list()) | ambiguous >= set(raw["person"].to_list())
    return attributed, ambiguous


def test_linkage_through_the_ttp_maps_has_precision_and_recall_one_for_valid_bsns(
    run: Run, tiny_extracts: GenerationResult
) -> None:
    extracts = tiny_extracts.out
    records = _ehr_records(extracts)
    claims_tokens, ambiguous = _claims_persons(run, extracts)
    records = records.filter(~pl.col("person").is_in(list(ambiguous)))

    ehr_p2 = (
        run.research("ehr", "patients")
        .select("patient_id", "token")
        .join(run.token_map("ehr"), on="token", how="inner", validate="m:1")
        .select("patient_id", "p2")
    )
    claims_p2 = claims_tokens.join(run.token_map("claims"), on="token", how="inner", validate="1:1")
    assert claims_p2.height == claims_tokens.height, "a claims token has no project pseudonym"
    assert records["patient_id"].is_in(ehr_p2["patient_id"].implode()).all(), (
        "a valid EHR record has no P2"
    )

    linked = set(
        records.select("patient_id")
        .join(ehr_p2, on="patient_id")
        .join(claims_p2.select("p2", "person"), on="p2")
        .select("patient_id", "person")
        .iter_rows()
    )
    truth = set(
        records.join(claims_tokens.select("person"), on="person")
        .select("patient_id", "person")
        .iter_rows()
    )
    assert len(truth) > 3000  # not vacuous: most of the tiny EHR's records
    true_links = linked & truth
    precision = len(true_links) / len(linked)
    recall = len(true_links) / len(truth)
    assert (precision, recall) == (1.0, 1.0), (
        f"{len(linked - truth)} false links, {len(truth - linked)} missed"
    )


def test_linkage_an_invalid_ehr_bsn_gets_a_record_token_and_no_pseudonym_by_bsn(
    run: Run, tiny_extracts: GenerationResult
) -> None:
    """Issue 13: a record without a usable BSN carries a token of its own (the fallback may link
    it), never a person's token and never a project pseudonym by BSN."""
    patients = run.research("ehr", "patients")
    invalid = patients.filter(pl.col("bsn_status") != VALID)
    assert invalid.height > 0
    assert invalid["token"].null_count() == 0
    assert invalid["token"].n_unique() == invalid.height
    assert not invalid["token"].is_in(run.identifiers("ehr")["token"].implode()).any()
    mapped = run.token_map("ehr").filter(pl.col("token").is_in(invalid["token"].implode()))
    assert not (mapped["link_method"] == "bsn").any()


# --- tokens fresh per run, pseudonyms stable ------------------------------------------------------


def test_tokens_differ_between_two_runs_of_the_supplier_step(run: Run, second_run: Run) -> None:
    for supplier in ("ehr", "claims"):
        first, again = run.identifiers(supplier), second_run.identifiers(supplier)
        assert first.height == again.height > 0
        assert set(first["token"].to_list()).isdisjoint(again["token"].to_list())
        # Stage 1 is deterministic: same P1 set, under other tokens.
        assert set(first["p1"].to_list()) == set(again["p1"].to_list())
    assert run.ehr.batch_id != second_run.ehr.batch_id


def test_project_pseudonyms_are_equal_across_two_runs_of_the_supplier_step(
    run: Run, second_run: Run
) -> None:
    def p2_by(r: Run, supplier: str, table: str, key: str) -> pl.DataFrame:
        return (
            r.research(supplier, table)
            .select(key, "token")
            .join(r.token_map(supplier), on="token", how="inner")
            .select(key, "p2", "token")
        )

    for supplier, table, key in (
        ("ehr", "patients", "patient_id"),
        ("claims", "claims", "claim_id"),
    ):
        a, b = p2_by(run, supplier, table, key), p2_by(second_run, supplier, table, key)
        both = a.join(b, on=key, how="full", suffix="_b", coalesce=True)
        assert both.height == a.height == b.height > 0
        assert both.filter(pl.col("p2") != pl.col("p2_b")).height == 0
        assert both.filter(pl.col("token") == pl.col("token_b")).height == 0


# --- no silent drop; reports ----------------------------------------------------------------------


@pytest.mark.parametrize("supplier", ["ehr", "claims"])
def test_content_rows_equal_the_validated_clean_rows(
    run: Run, tiny_extracts: GenerationResult, supplier: str
) -> None:
    result = run.ehr if supplier == "ehr" else run.claims
    validated = validate_extract(tiny_extracts.out / supplier, supplier)
    manifest = json.loads((result.out / "for_research" / "manifest.json").read_text())
    tables = [t.name for t in SUPPLIERS[supplier].tables]
    assert sorted(p.name for p in (result.out / "for_research").iterdir()) == sorted(
        [*(f"{t}.parquet" for t in tables), "manifest.json"]
    )
    for table in tables:
        rows = run.research(supplier, table).height
        raw_rows = _raw(tiny_extracts.out, supplier, table).height
        assert rows == validated.clean_rows(table) == raw_rows - validated.quarantined(table), table
        assert rows == manifest["rows"][table] == result.report["rows"][table], table
        assert manifest["sha256"][f"{table}.parquet"] == file_sha256(
            result.out / "for_research" / f"{table}.parquet"
        )
    if supplier == "ehr":
        assert validated.quarantined("registrations") > 0  # not vacuous: some rows are quarantined


@pytest.mark.parametrize("supplier", ["ehr", "claims"])
def test_content_files_carry_token_and_bsn_status_in_place_of_bsn(run: Run, supplier: str) -> None:
    for table in SUPPLIERS[supplier].tables:
        columns = run.research(supplier, table.name).columns
        assert "bsn" not in columns
        # The contract v2 identifiers stay at the supplier, like the BSN.
        content = [c for c in table.column_names if c not in table.identifying_columns]
        if "bsn" in table.column_names:
            expected = [c if c != "bsn" else "token" for c in content]
            assert columns == [*expected, "bsn_status"]
        else:
            assert columns == content


@pytest.mark.parametrize("supplier", ["ehr", "claims"])
def test_supplier_report_counts_per_bsn_status_sum_to_the_rows(
    run: Run, tiny_extracts: GenerationResult, supplier: str
) -> None:
    result = run.ehr if supplier == "ehr" else run.claims
    report = json.loads((result.out / "supplier_report.json").read_text())
    assert report == json.loads(json.dumps(result.report, default=str))
    by_status = {r["bsn_status"]: r for r in report["bsn_status"]}
    tables = BSN_TABLES[supplier]
    assert sum(r["rows"] for r in by_status.values()) == sum(report["rows"][t] for t in tables)
    # The same counts by the reference rules, over the validated (clean) rows.
    validated = validate_extract(tiny_extracts.out / supplier, supplier)
    clean = pl.concat([validated.tables[t].select("bsn").collect() for t in tables])
    expected = (
        _with_reference_status(clean)
        .group_by("s")
        .agg(pl.len().alias("rows"), pl.col("n").n_unique().alias("d"))
    )
    assert {s: (r["rows"], r["distinct_values"]) for s, r in by_status.items()} == {
        row["s"]: (row["rows"], row["d"]) for row in expected.iter_rows(named=True)
    }
    assert (
        report["persons_pseudonymised"]
        == by_status[VALID]["distinct_values"]
        == run.identifiers(supplier).height
    )
    assert set(by_status) - {VALID}, "the tiny extract has invalid BSNs"


def test_ehr_report_has_invalid_bsn_per_practice_as_counts_only(
    run: Run, tiny_extracts: GenerationResult
) -> None:
    report = run.ehr.report
    practices = set(_raw(tiny_extracts.out, "ehr", "practices")["practice_id"].to_list())
    entries = report["invalid_bsn_per_practice"]
    assert entries
    for entry in entries:
        assert set(entry) == {"practice_id", "bsn_status", "patients"}
        assert entry["practice_id"] in practices | {None}
        assert entry["bsn_status"] in {s.value for s in BsnStatus} - {VALID}
        assert isinstance(entry["patients"], int) and entry["patients"] > 0
    patients = run.research("ehr", "patients")
    assert (
        sum(e["patients"] for e in entries) == patients.filter(pl.col("bsn_status") != VALID).height
    )
    # No value of an invalid BSN in the report (it stays with the supplier, but holds counts only).
    raw = _with_reference_status(_raw(tiny_extracts.out, "ehr", "patients"))
    text = (run.ehr.out / "supplier_report.json").read_text()
    invalid_values = raw.filter((pl.col("s") != VALID) & pl.col("bsn").is_not_null())[
        "bsn"
    ].to_list()
    assert invalid_values and not [v for v in invalid_values if v.strip() and v.strip() in text]
    assert "invalid_bsn_per_practice" not in run.claims.report


def test_ttp_report_counts_tokens_distinct_p1_and_no_collisions(
    run: Run, tiny_extracts: GenerationResult
) -> None:
    report = json.loads((run.ttp_result.out / "ttp_report.json").read_text())
    assert report == run.ttp_result.report
    assert set(report) == {
        "project",
        "project_key_id",
        "p2_scheme",
        "suppliers",
        "distinct_p1",
        "collisions",
        "fallback",
    }
    assert report["collisions"] == 0
    valid = {s: _distinct_valid_bsns(tiny_extracts.out, s) for s in ("ehr", "claims")}
    for supplier, counts in report["suppliers"].items():
        assert set(counts) == {"tokens_received", "distinct_p1", "network_key_id"}
        assert (
            counts["tokens_received"]
            == run.identifiers(supplier).height
            == run.token_map(supplier).filter(pl.col("link_method") == "bsn").height
        )
        assert counts["distinct_p1"] == len(valid[supplier])
        assert counts["network_key_id"] == run.network.id
        by_bsn = run.token_map(supplier).filter(pl.col("link_method") == "bsn")
        assert set(by_bsn["token"].to_list()) == set(run.identifiers(supplier)["token"].to_list())
    assert report["distinct_p1"] == len(valid["ehr"] | valid["claims"])
    assert report["project_key_id"] == run.ttp_result.project_key_id


# --- wrong keys and tampered inputs are refused ---------------------------------------------------


def test_ttp_step_refuses_suppliers_with_different_network_keys(
    run: Run, tiny_extracts: GenerationResult, tmp_path: Path
) -> None:
    other = generate_key(tmp_path / "other.key", "network")
    claims = run_supplier_step(tiny_extracts.out / "claims", "claims", other, tmp_path / "claims")
    inputs = {"ehr": run.ehr.out / "for_ttp", "claims": claims.out / "for_ttp"}
    with pytest.raises(KeyMismatchError) as info:
        run_ttp_step(inputs, run.ttp, PROJECT, tmp_path / "ttp")
    message = str(info.value)
    assert run.network.id in message and other.id in message
    assert run.network.material.hex() not in message and other.material.hex() not in message
    assert info.value.exit_code == 7
    assert not (tmp_path / "ttp").exists()


def test_ttp_step_refuses_inputs_made_with_another_than_the_expected_network_key(
    run: Run, tmp_path: Path
) -> None:
    inputs = {"ehr": run.ehr.out / "for_ttp", "claims": run.claims.out / "for_ttp"}
    with pytest.raises(KeyMismatchError, match="expected 0badc0de"):
        run_ttp_step(inputs, run.ttp, PROJECT, tmp_path / "ttp", expected_network_key_id="0badc0de")
    assert not (tmp_path / "ttp").exists()
    ok = run_ttp_step(
        inputs, run.ttp, PROJECT, tmp_path / "ttp", expected_network_key_id=run.network.id
    )
    assert ok.report["collisions"] == 0


def _copy_for_ttp(run: Run, tmp_path: Path) -> Path:
    folder = tmp_path / "for_ttp"
    shutil.copytree(run.ehr.out / "for_ttp", folder)
    return folder


def test_ttp_step_refuses_an_identifier_file_that_differs_from_its_checksum(
    run: Run, tmp_path: Path
) -> None:
    folder = _copy_for_ttp(run, tmp_path)
    ident = pl.read_parquet(folder / "identifiers.parquet")
    # Tampering that keeps the file well-formed: each token gets its neighbour's P1.
    rotated = pl.concat([ident["p1"].tail(1), ident["p1"].head(ident.height - 1)])
    ident.with_columns(p1=rotated).write_parquet(
        folder / "identifiers.parquet"
    )
    with pytest.raises(PseudonymisationError, match="checksum"):
        run_ttp_step({"ehr": folder}, run.ttp, PROJECT, tmp_path / "ttp")
    assert not (tmp_path / "ttp").exists()


def test_ttp_step_refuses_a_truncated_identifier_file(run: Run, tmp_path: Path) -> None:
    folder = _copy_for_ttp(run, tmp_path)
    data = (folder / "identifiers.parquet").read_bytes()
    (folder / "identifiers.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(PseudonymisationError, match="checksum"):
        run_ttp_step({"ehr": folder}, run.ttp, PROJECT, tmp_path / "ttp")


def test_ttp_step_refuses_pseudonyms_whose_key_id_differs_from_the_manifest(
    run: Run, tmp_path: Path
) -> None:
    folder = _copy_for_ttp(run, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["network_key_id"] = "0badc0de"  # the checksum still holds: only the manifest lies
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(KeyMismatchError, match="0badc0de"):
        run_ttp_step({"ehr": folder}, run.ttp, PROJECT, tmp_path / "ttp")


# --- outputs are written atomically ---------------------------------------------------------------


def test_successful_steps_leave_no_partial_folder(run: Run) -> None:
    names = [p.name for p in run.root.iterdir()]
    assert sorted(names) == ["supplier_claims", "supplier_ehr", "ttp"]
    leftovers = [p for p in run.root.rglob("*") if "partial" in p.name]
    assert leftovers == []


def _fail_on_call(n: int, real: Callable[..., None]) -> Callable[..., None]:
    """A stand-in for ``real`` that raises on its n-th call (a failure injected mid-step)."""
    calls = {"n": 0}

    def wrapper(*args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == n:
            msg = "injected failure"
            raise RuntimeError(msg)
        return real(*args, **kwargs)

    return wrapper


def test_supplier_step_failing_midway_leaves_no_output_folder(
    tiny_extracts: GenerationResult,
    keys: tuple[Key, Key],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "supplier_ehr"
    # 2nd write_json = the research manifest: identifiers and content files are already written.
    monkeypatch.setattr(supplier_module, "write_json", _fail_on_call(2, supplier_module.write_json))
    with pytest.raises(RuntimeError, match="injected"):
        run_supplier_step(tiny_extracts.out / "ehr", "ehr", keys[0], out)
    assert not out.exists()
    monkeypatch.undo()
    result = run_supplier_step(tiny_extracts.out / "ehr", "ehr", keys[0], out)
    assert (result.out / "for_ttp" / "identifiers.parquet").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["supplier_ehr"]  # the retry removed the partial


def test_ttp_step_failing_midway_leaves_no_output_folder(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "ttp"
    inputs = {"ehr": run.ehr.out / "for_ttp", "claims": run.claims.out / "for_ttp"}
    monkeypatch.setattr(ttp_module, "write_json", _fail_on_call(2, ttp_module.write_json))
    with pytest.raises(RuntimeError, match="injected"):
        run_ttp_step(inputs, run.ttp, PROJECT, out)
    assert not out.exists()


# BUG (ttp.py, run_ttp_step, `pl.concat(all_p1)`): with no inputs the step fails with a bare
# ValueError ("cannot concat empty list") after creating its '.partial' folder, instead of
# refusing the call up front with a PseudonymisationError that says no supplier folder was given.
def test_ttp_step_with_no_inputs_is_refused_as_a_user_error(run: Run, tmp_path: Path) -> None:
    with pytest.raises(PseudonymisationError):
        run_ttp_step({}, run.ttp, PROJECT, tmp_path / "ttp")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_ttp_links_by_fallback_within_one_linkage_and_refuses_encodings_of_two_linkages(
    run: Run, tiny_extracts: GenerationResult, tmp_path: Path
) -> None:
    # Key rotation per linkage (issue 13, item 8): the suppliers' encodings are keyed per linkage label.
    out = {}
    for supplier, linkage in (("ehr", "2026-q4"), ("claims", "2026-q4"), ("claims_next", "2027-q1")):
        source = supplier.split("_")[0]
        result = run_supplier_step(tiny_extracts.out / source, source, run.network, tmp_path / supplier,
                                   linkage=linkage)
        manifest = json.loads((result.out / "for_ttp" / "manifest.json").read_text())
        assert manifest["encoding_linkage"] == linkage
        out[supplier] = result.out / "for_ttp"
    same = run_ttp_step({"ehr": out["ehr"], "claims": out["claims"]}, run.ttp, PROJECT, tmp_path / "ttp")
    assert sum(same.report["fallback"]["linked_by_method"].values()) > 0
    with pytest.raises(KeyMismatchError, match="keyed for different linkages") as info:
        run_ttp_step({"ehr": out["ehr"], "claims": out["claims_next"]}, run.ttp, PROJECT, tmp_path / "ttp2")
    assert "2026-q4" in str(info.value) and "2027-q1" in str(info.value)
    assert info.value.exit_code == 7
    assert not (tmp_path / "ttp2").exists()


@pytest.mark.parametrize("name", ["../ehr", "ehr/../../x", "/tmp/x", "", "EHR claims", ".ehr"])
def test_ttp_step_refuses_a_supplier_name_that_is_not_a_plain_name(run: Run, tmp_path: Path, name: str) -> None:
    """The supplier's name names its token map's folder and scratch: a name a for_ttp manifest could
    carry (``supplier``: "../x") must not reach a path outside the output."""
    folder = _copy_for_ttp(run, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "supplier": name}))
    with pytest.raises(PseudonymisationError, match="supplier name"):
        run_ttp_step({name: folder}, run.ttp, PROJECT, tmp_path / "out" / "ttp")
    assert [p.name for p in tmp_path.iterdir()] == ["for_ttp"]  # nothing made, inside the output or beside it
