"""Linkage in the research environment (``shared/spec/pseudonymisation.md``, step 3).

Input: each supplier's ``for_research`` content (tokens in place of BSNs) and the TTP's token ->
project-pseudonym maps. Output, the *linked* layout every later stage reads::

    <out>/persons.parquet           p2 (person number) -> p2_label (the TTP's labelled pseudonym)
    <out>/ehr/patients.parquet      patient_id, p2, bsn_status, birth_date, sex, death_date, postcode4
    <out>/ehr/<table>.parquet       the other EHR tables, as validated
    <out>/claims/insured.parquet    p2, bsn_status, year, insurer, birth_date, sex, death_date, wlz_institution
    <out>/claims/claims.parquet     claim_id, p2, bsn_status, insurer, service_date, sector, ...
    <out>/claims/insurer_years.parquet
    <out>/manifest.json             project, key ids, batch ids, rows, checksums
    <out>/linkage_report.json       for the steward: linked shares, conflicts, unlinked reasons

Tokens are dropped here: after linkage the two sources share only the project pseudonym ``p2``,
re-encoded as a 64-bit *person number*: the rank of the TTP's labelled pseudonym among all
pseudonyms of the project's token maps. The labels are pseudorandom, so the numbers carry no order
of anything, and ``persons.parquet`` keeps the one-to-one map back to the labels. Eight bytes
instead of 46 characters on every content row: a register's claims hold hundreds of millions of
rows, and every later stage joins on this column.
A token map must belong to the content it is joined to (same supplier and batch id, checked), so
that a wrong or stale map fails loudly instead of producing an empty linkage.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from extracts.atomic import claim_output, staging
from extracts.errors import EngineError, ExtractNotFoundError
from linkage.report import linkage_report

__all__ = ["LinkageError", "LinkageResult", "link"]

_SUPPLIERS = ("ehr", "claims")


class LinkageError(EngineError):
    """Inputs of the linkage stage do not belong together or are incomplete."""

    exit_code = 8


@dataclass(frozen=True)
class LinkageResult:
    out: Path
    project: str
    report: dict
    seconds: float


def _manifest(folder: Path, what: str) -> dict:
    path = folder / "manifest.json"
    if not folder.is_dir():
        msg = f"{folder}: no such folder; expected {what}"
        raise ExtractNotFoundError(msg)
    if not path.is_file():
        msg = f"{folder}: no manifest.json; expected {what}"
        raise LinkageError(msg)
    return json.loads(path.read_text())


def _check_pair(supplier: str, content: dict, token_map: dict) -> None:
    if content.get("supplier") != supplier or token_map.get("supplier") != supplier:
        msg = f"{supplier}: content and token map are not both from supplier {supplier!r}"
        raise LinkageError(msg)
    if content.get("batch_id") != token_map.get("batch_id"):
        msg = (f"{supplier}: the token map was made for another batch of content (batch ids differ); "
               "rerun the TTP step on this batch's identifier file")
        raise LinkageError(msg)


def _replace_tokens(lf: pl.LazyFrame, tokens: pl.LazyFrame) -> pl.LazyFrame:
    columns = [c if c != "token" else "p2" for c in lf.collect_schema().names()]
    return lf.join(tokens, on="token", how="left").select(columns)


def _person_numbers(token_maps: dict[str, Path], tmp: Path) -> pl.DataFrame:
    """Every project pseudonym of the token maps, numbered in label order; written to persons.parquet."""
    persons = (
        pl.concat([pl.scan_parquet(token_maps[s] / "token_map.parquet").select(pl.col("p2").alias("p2_label"))
                   for s in _SUPPLIERS])
        .unique()
        .sort("p2_label")
        .with_row_index("p2")
        .with_columns(pl.col("p2").cast(pl.Int64))
        .collect()
    )
    persons.write_parquet(tmp / "persons.parquet", compression="zstd", statistics=False)
    return persons


def _write_linked(content: dict[str, Path], token_maps: dict[str, Path], tmp: Path) -> dict[str, int]:
    persons = _person_numbers(token_maps, tmp)
    rows: dict[str, int] = {"persons": persons.height}
    numbers = persons.lazy()
    for supplier in _SUPPLIERS:
        (tmp / supplier).mkdir(parents=True)
        tokens = (
            pl.scan_parquet(token_maps[supplier] / "token_map.parquet")
            .join(numbers, left_on="p2", right_on="p2_label", how="left")
            .select("token", pl.col("p2_right").alias("p2"))
            .collect()
            .lazy()
        )
        for path in sorted(content[supplier].glob("*.parquet")):
            lf = pl.scan_parquet(path)
            if "token" in lf.collect_schema().names():
                lf = _replace_tokens(lf, tokens)
            target = tmp / supplier / path.name
            lf.sink_parquet(target, compression="zstd")
            rows[f"{supplier}/{path.stem}"] = pl.scan_parquet(target).select(pl.len()).collect().item()
    return rows


def link(content: dict[str, Path], token_maps: dict[str, Path], out: Path, *, overwrite: bool = False) -> LinkageResult:
    """Join each supplier's content to its token map, drop tokens, write the linked layout.

    Args:
        content: supplier -> its ``for_research`` folder.
        token_maps: supplier -> the TTP's folder for that supplier (``token_map.parquet``).
        out: the linked folder (written under a temporary name, renamed when complete).
    """
    out = Path(out)
    inputs = {**{f"content.{s}": Path(p) for s, p in content.items()},
              **{f"token_maps.{s}": Path(p) for s, p in token_maps.items()}}
    with claim_output(out, overwrite=overwrite, inputs=inputs):  # before anything is read
        return _link(content, token_maps, out, overwrite=overwrite)


def _link(content: dict[str, Path], token_maps: dict[str, Path], out: Path, *, overwrite: bool) -> LinkageResult:
    began = time.perf_counter()
    missing = [s for s in _SUPPLIERS if s not in content or s not in token_maps]
    if missing:
        msg = f"linkage needs content and a token map for every supplier; missing: {missing}"
        raise LinkageError(msg)
    manifests = {}
    for supplier in _SUPPLIERS:
        c, t = _manifest(content[supplier], "a supplier's for_research folder"), _manifest(token_maps[supplier], "a TTP token-map folder")
        _check_pair(supplier, c, t)
        manifests[supplier] = (c, t)
    projects = {t["project"] for _, t in manifests.values()}
    key_ids = {t["project_key_id"] for _, t in manifests.values()}
    if len(projects) != 1 or len(key_ids) != 1:
        msg = f"token maps of different projects or project keys ({sorted(projects)}); they cannot link"
        raise LinkageError(msg)
    project = projects.pop()

    with staging(out, overwrite=overwrite) as tmp:
        rows = _write_linked(content, token_maps, tmp)
        report = linkage_report(tmp)
        report["project"] = project
        (tmp / "linkage_report.json").write_text(json.dumps(report, indent=2, default=str))
        (tmp / "manifest.json").write_text(json.dumps({
            "project": project, "project_key_id": key_ids.pop(),
            "batches": {s: c["batch_id"] for s, (c, _) in manifests.items()}, "rows": rows,
        }, indent=2))
    return LinkageResult(out, project, report, time.perf_counter() - began)
