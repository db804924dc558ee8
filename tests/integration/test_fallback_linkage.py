"""End to end: generated extracts with planted missing BSNs, linked by the TTP's fallback (issue 13).

The tiny preset, given contract-v2 identifiers per true person and the BSN removed from a share of
EHR records (``tests/fallback_planting.py``), goes through the supplier steps, the TTP and the
linkage. The fallback must link the planted records to their own person, and no identifier (names,
postcodes, house numbers, insurance numbers) nor encoding may reach a content file, a token map or
the research side.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from fallback_planting import plant_identifiers

from extracts.generator.run import GenerationResult
from linkage.link import link
from pseudonymisation.keys import generate_key
from pseudonymisation.supplier import run_supplier_step
from pseudonymisation.ttp import run_ttp_step

SUPPLIERS = ("ehr", "claims")
IDENTIFIERS = ("postcode6", "house_number", "insurance_number", "family_name", "initials")


@pytest.fixture(scope="module")
def fallback_run(tiny_extracts: GenerationResult, tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("fallback")
    planted = plant_identifiers(tiny_extracts.out, work / "extracts", missing_bsn_share=0.05, seed=3)
    network = generate_key(work / "keys" / "network.key", "network")
    ttp_key = generate_key(work / "keys" / "ttp.key", "ttp")
    for s in SUPPLIERS:
        run_supplier_step(work / "extracts" / s, s, network, work / s)
    ttp = run_ttp_step({s: work / s / "for_ttp" for s in SUPPLIERS}, ttp_key, "fb", work / "ttp")
    linked = link({s: work / s / "for_research" for s in SUPPLIERS}, {s: work / "ttp" / s for s in SUPPLIERS},
                  work / "linked", project="fb")
    return {"work": work, "planted": planted, "ttp": ttp, "linked": linked}


def _person_links(work: Path) -> pl.DataFrame:
    """Per EHR record: true person, and the true persons of the claims lines under its pseudonym."""
    truth = work / "extracts" / "truth"
    patients = pl.read_parquet(work / "linked" / "ehr" / "patients.parquet").join(
        pl.read_parquet(truth / "patients.parquet").select("patient_id", "person"), on="patient_id")
    claims = pl.read_parquet(work / "linked" / "claims" / "claims.parquet").select("claim_id", "p2").join(
        pl.read_parquet(truth / "claims.parquet").select("claim_id", pl.col("person").alias("claims_person")),
        on="claim_id")
    per_p2 = claims.group_by("p2").agg(pl.col("claims_person").unique())
    return patients.join(per_p2, on="p2", how="left")


def test_fallback_links_planted_missing_bsns_to_their_own_person(fallback_run: dict) -> None:
    work = fallback_run["work"]
    planted = pl.read_parquet(work / "extracts" / "truth" / "planted_missing_bsn.parquet").filter("bsn_removed")
    assert planted.height == fallback_run["planted"]["bsn_removed"] > 50  # not vacuous
    records = _person_links(work).join(planted, on="patient_id", how="semi")
    by_fallback = records.filter(pl.col("link_method").is_in(["insurance_number", "probabilistic"]))
    assert set(by_fallback["link_method"].unique()) == {"insurance_number", "probabilistic"}
    with_claims = by_fallback.filter(pl.col("claims_person").is_not_null())
    wrong = with_claims.filter(pl.col("claims_person").list.len() != 1
                               | (pl.col("claims_person").list.first() != pl.col("person")))
    assert with_claims.height > 30
    assert wrong.height == 0
    assert by_fallback.height >= 0.9 * records.height
    report = fallback_run["linked"].report
    assert sum(v for k, v in report["linked_records_by_method"].items() if k != "bsn") == \
        sum(fallback_run["ttp"].report["fallback"]["linked_by_method"].values())


def _values(work: Path) -> set[str]:
    """Every planted identifier value (as written in the extracts), longer than 3 characters."""
    patients = pl.read_parquet(next((work / "extracts" / "ehr").glob("patients.parquet")))
    values = set()
    for c in IDENTIFIERS:
        values |= {v for v in patients[c].drop_nulls().cast(pl.String).to_list() if len(v) > 3}
    return values


def test_no_identifier_or_encoding_reaches_content_token_maps_or_research_side(fallback_run: dict) -> None:
    work = fallback_run["work"]
    values = _values(work)
    assert len(values) > 1000
    folders = [work / s / "for_research" for s in SUPPLIERS] + [work / "ttp" / s for s in SUPPLIERS] + [work / "linked"]
    encodings = pl.read_parquet(work / "ehr" / "for_ttp" / "encodings.parquet")
    enc_tokens = {str(v) for c in ("t_insurance", "t_birth", "t_address") for v in encodings[c].drop_nulls().to_list()}
    for folder in folders:
        for path in folder.rglob("*.parquet"):
            frame = pl.read_parquet(path)
            assert not set(frame.columns) & {*IDENTIFIERS, "t_insurance", "t_birth", "t_address",
                                             "bf_family_name", "bf_initials"}, path.name
            for column, dtype in frame.schema.items():
                if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
                    seen = set(frame[column].drop_nulls().cast(pl.String).unique().to_list())
                    assert not seen & values, f"{path.name}:{column}"
        for path in folder.rglob("*.json"):
            text = path.read_text()
            assert not [v for v in values if v in text], path.name
    ttp_report = (work / "ttp" / "ttp_report.json").read_text()
    assert not [t for t in enc_tokens if t in ttp_report]
    assert not [v for v in values if v in ttp_report]
    assert json.loads(ttp_report)["fallback"]["records"] > 0


def test_linkage_report_shows_the_fallback_estimated_on_bsn_linked_records(fallback_run: dict) -> None:
    estimate = fallback_run["linked"].report["fallback"]["estimated_on_bsn_linked_records"]
    assert estimate["records"] > 500
    assert estimate["precision"] >= 0.99
    assert estimate["wrong_links"] == estimate["linked"] - round(estimate["precision"] * estimate["linked"])
    assert "blocking" not in fallback_run["linked"].report["fallback"]  # the TTP's internals stay there


def test_fallback_disabled_links_on_the_bsn_only(fallback_run: dict, tmp_path: Path) -> None:
    from pseudonymisation.keys import load_key
    from pseudonymisation.matching import FallbackSettings

    work = fallback_run["work"]
    ttp_key = load_key(work / "keys" / "ttp.key", "ttp")
    off = run_ttp_step({s: work / s / "for_ttp" for s in SUPPLIERS}, ttp_key, "fb", tmp_path / "ttp",
                       fallback=FallbackSettings(enabled=False))
    assert "not_run" in off.report["fallback"]
    token_map = pl.read_parquet(tmp_path / "ttp" / "ehr" / "token_map.parquet")
    assert set(token_map["link_method"].cast(pl.String).unique()) == {"bsn"}
    on = pl.read_parquet(work / "ttp" / "ehr" / "token_map.parquet")
    # The BSN links are the same with and without the fallback: it only adds.
    assert on.filter(pl.col("link_method") == "bsn").equals(token_map)


def _copy_for_ttp(work: Path, to: Path) -> dict[str, Path]:
    import shutil

    folders = {}
    for s in SUPPLIERS:
        folders[s] = to / s
        shutil.copytree(work / s / "for_ttp", folders[s])
    return folders


def test_for_ttp_folders_made_before_the_fallback_link_on_the_bsn_only(fallback_run: dict, tmp_path: Path) -> None:
    from pseudonymisation.keys import load_key

    work = fallback_run["work"]
    folders = _copy_for_ttp(work, tmp_path / "in")
    for folder in folders.values():  # as pfl-supplier wrote them before FBv1
        (folder / "encodings.parquet").unlink()
        manifest = json.loads((folder / "manifest.json").read_text())
        del manifest["sha256"]["encodings.parquet"]
        (folder / "manifest.json").write_text(json.dumps(manifest))
    result = run_ttp_step(folders, load_key(work / "keys" / "ttp.key", "ttp"), "fb", tmp_path / "ttp")
    assert "made before FBv1" in result.report["fallback"]["not_run"]


def test_changed_encodings_file_is_refused_without_output(fallback_run: dict, tmp_path: Path) -> None:
    from pseudonymisation.errors import PseudonymisationError
    from pseudonymisation.keys import load_key

    work = fallback_run["work"]
    folders = _copy_for_ttp(work, tmp_path / "in")
    path = folders["claims"] / "encodings.parquet"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(PseudonymisationError, match="encodings.parquet: missing or its checksum differs") as info:
        run_ttp_step(folders, load_key(work / "keys" / "ttp.key", "ttp"), "fb", tmp_path / "ttp")
    assert info.value.exit_code == 6
    assert not (tmp_path / "ttp").exists()


def test_fallback_on_the_generators_own_identifiers_links_records_without_usable_bsn(
    tiny_extracts: GenerationResult, tmp_path: Path
) -> None:
    """The generator's identifiers (typos, moves, twins, outdated insurers): every link right."""
    network = generate_key(tmp_path / "keys" / "network.key", "network")
    ttp_key = generate_key(tmp_path / "keys" / "ttp.key", "ttp")
    for s in SUPPLIERS:
        run_supplier_step(tiny_extracts.out / s, s, network, tmp_path / s)
    run_ttp_step({s: tmp_path / s / "for_ttp" for s in SUPPLIERS}, ttp_key, "gen", tmp_path / "ttp")
    link({s: tmp_path / s / "for_research" for s in SUPPLIERS}, {s: tmp_path / "ttp" / s for s in SUPPLIERS},
         tmp_path / "linked", project="gen")
    truth = tiny_extracts.out / "truth"
    patients = pl.read_parquet(tmp_path / "linked" / "ehr" / "patients.parquet").join(
        pl.read_parquet(truth / "patients.parquet").select("patient_id", "person"), on="patient_id")
    claims = pl.read_parquet(tmp_path / "linked" / "claims" / "claims.parquet").select("claim_id", "p2").join(
        pl.read_parquet(truth / "claims.parquet").select("claim_id", pl.col("person").alias("claims_person")),
        on="claim_id")
    without = patients.filter(pl.col("bsn_status") != "valid")
    linked = without.filter(pl.col("link_method").is_not_null())
    assert without.height > 20 and linked.height >= 0.9 * without.height
    check = linked.join(claims.group_by("p2").agg(pl.col("claims_person").unique()), on="p2", how="inner")
    assert check.height > 10
    assert check.filter((pl.col("claims_person").list.len() != 1)
                        | (pl.col("claims_person").list.first() != pl.col("person"))).height == 0


def test_fallback_counts_reaching_the_research_side_are_banded_when_small(fallback_run: dict) -> None:
    summary = fallback_run["linked"].report["fallback"]
    for key in ("linked_by_method", "unlinked_by_reason"):
        for value in summary[key].values():
            assert value in ("<10", ">=10") or value == 0 or value >= 10
    full = fallback_run["ttp"].report["fallback"]["unlinked_by_reason"]
    assert {k for k, v in full.items() if 0 < v < 10} == {k for k, v in summary["unlinked_by_reason"].items()
                                                         if v == "<10"}


def _fallback_persons_of_the_population(study: Path, linked: Path) -> dict[int, set[int]]:
    """Per year: persons of the study population (the cohort table's denominator) whose EHR record
    the TTP linked by its fallback, from the linked layout and the study's person sets."""
    population = pl.read_parquet(study / "persons" / "prevalence.parquet").filter(pl.col("column") == "denominator")
    fallback = pl.read_parquet(linked / "ehr" / "patients.parquet").filter(
        pl.col("link_method").cast(pl.String).is_in(["insurance_number", "probabilistic"])).select(
        pl.col("p2").cast(pl.Int64).alias("person"))
    joined = population.join(fallback, on="person", how="semi").group_by("year").agg(pl.col("person").unique())
    years = population["year"].unique().to_list()
    found = {y: set(p) for y, p in joined.iter_rows()}
    return {y: found.get(y, set()) for y in years}


@pytest.mark.parametrize("fallback", ["include", "exclude"])
def test_study_counts_its_persons_linked_by_the_fallback_through_release_and_audit(
    fallback_run: dict, tmp_path: Path, fallback: str
) -> None:
    # Issue 13, item 5: how many study persons the fallback linked, per year, beside the attrition
    # chain (not a step of it), with its person set, released and audited like every person count.
    from command_runner import command_in_process  # noqa: PLC0415

    linked = fallback_run["work"] / "linked"
    def ok(*args: str) -> str:
        proc = command_in_process(*args, cwd=tmp_path)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
        return proc.stdout + proc.stderr

    ok("pfl-study", f"linked={linked}", f"out={tmp_path / 'study'}", f"study.linkage.fallback={fallback}")
    table = pl.read_parquet(tmp_path / "study" / "fallback_links.parquet")
    expected = _fallback_persons_of_the_population(tmp_path / "study", linked)
    assert dict(table.select("year", "persons").iter_rows()) == {y: len(p) for y, p in expected.items()}
    if fallback == "exclude":  # X1 on the BSN only: no study person is linked by the fallback
        assert table["persons"].sum() == 0
        return
    assert min(len(p) for p in expected.values()) >= 10  # visible at T = 10: the release shows them
    members = pl.read_parquet(tmp_path / "study" / "persons" / "fallback_links.parquet")
    assert {y: set(p) for y, p in members.group_by("year").agg(pl.col("person")).iter_rows()} == expected
    attrition = pl.read_parquet(tmp_path / "study" / "attrition.parquet")
    assert "fallback" not in set(attrition["step"]) and attrition.columns[-1] == "after"  # the chain unchanged
    ok("pfl-ledger", "init", "--ledger", str(tmp_path / "ledger"))
    released = ok("pfl-release", f"study={tmp_path / 'study'}", f"out={tmp_path / 'release'}",
                  f"ledger={tmp_path / 'ledger'}")
    assert "fallback_links:" in released
    shown = pl.read_parquet(tmp_path / "release" / "fallback_links.parquet")
    assert dict(shown.select("year", "persons").iter_rows()) == {y: len(p) for y, p in expected.items()}
    manifest = json.loads((tmp_path / "release" / "manifest.json").read_text())
    assert {"type": "part_of", "part": "fallback_persons", "whole": "population", "drop": [], "set": {},
            "complement": "not:fallback_persons"} in manifest["relations"]
    audited = ok("pfl-audit", f"release={tmp_path / 'release'}")
    assert "verdict: PASS" in audited and "fallback_links: PASS" in audited
    ok("pfl-report", f"release={tmp_path / 'release'}", f"out={tmp_path / 'report.html'}")
    html = (tmp_path / "report.html").read_text()
    assert html.count("of whom linked without their BSN (TTP fallback)") == len(expected)  # one per year
    assert "Table fallback_links" not in html  # under the attrition, not again among the other tables
