"""Linkage in the research environment (``shared/spec/pseudonymisation.md``, step 3).

Input: each supplier's ``for_research`` content (tokens in place of BSNs) and the TTP's token ->
project-pseudonym maps. Output, the *linked* layout every later stage reads::

    <out>/persons.parquet           p2 (person number) -> p2_label (the TTP's labelled pseudonym)
    <out>/ehr/patients.parquet      patient_id, p2, bsn_status, birth_date, sex, death_date, postcode4,
                                    link_method (how the TTP gave the record its pseudonym: bsn,
                                    insurance_number or probabilistic; null where it has none)
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
Linked content files keep the rows in the order of the supplier's content files, whatever the
number of partitions (``partitions=K``, :mod:`linkage.partitioned`): the files are byte-identical.
A token map must belong to the content it is joined to (same supplier and batch id) and to the
project the linkage is for (``project=``, the id the TTP step was given); every input is checked
before anything is written (:mod:`linkage.inputs`), so that a wrong, stale or damaged input fails
loudly instead of producing an empty or partial linkage.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from execution import Executor, LocalExecutor
from extracts.atomic import claim_output, scratch, staging
from linkage.inputs import LinkageError, SupplierInputs, check_inputs
from linkage.partitioned import LINK_METHOD, link_partitioned, replace_tokens, write_rows
from linkage.persons import number_persons, numbered_tokens, write_persons
from linkage.report import linkage_report

__all__ = ["LINK_METHOD", "LinkageError", "LinkageResult", "link", "write_persons"]

_SUPPLIERS = ("ehr", "claims")


@dataclass(frozen=True)
class LinkageResult:
    out: Path
    project: str
    report: dict
    seconds: float


def _write_linked(inputs: dict[str, SupplierInputs], tmp: Path, *, executor: Executor, partitions: int,
                  out: Path) -> dict[str, int]:
    with scratch(out) as folder:  # person-level numbers and partials: owner-only, beside the output
        persons = number_persons({s: i.token_map / "token_map.parquet" for s, i in inputs.items()},
                                 tmp / "persons.parquet", folder / "numbers")
        tokens = {s: numbered_tokens(folder / "numbers", s) for s in _SUPPLIERS}
        rows: dict[str, int] = {"persons": persons}
        jobs: list[tuple[Path, str, bool, Path]] = []  # content with tokens: (content, token map, method, target)
        for supplier in _SUPPLIERS:
            (tmp / supplier).mkdir(parents=True)
            for path in inputs[supplier].content_files:
                target = tmp / supplier / path.name
                lf = pl.scan_parquet(path)
                if "token" not in lf.collect_schema().names():
                    write_rows(lf, target)  # no person key: copied as it is, whatever K
                else:
                    jobs.append((path, supplier, (supplier, path.stem) == ("ehr", "patients"), target))
        if partitions == 1:
            # One pass, rows in the content's order (the partitioned reduce restores that order too).
            for content, supplier, method, target in jobs:
                write_rows(replace_tokens(pl.scan_parquet(content), tokens[supplier].collect().lazy(), method=method),
                           target)
        else:
            (folder / "partitions").mkdir()
            link_partitioned(jobs, tokens, folder / "partitions", executor=executor, partitions=partitions)
    for supplier in _SUPPLIERS:
        for path in inputs[supplier].content_files:
            target = tmp / supplier / path.name
            rows[f"{supplier}/{path.stem}"] = pl.scan_parquet(target).select(pl.len()).collect().item()
    return rows


def link(content: dict[str, Path], token_maps: dict[str, Path], out: Path, *, project: str,
         overwrite: bool = False, executor: Executor | None = None, partitions: int = 1) -> LinkageResult:
    """Join each supplier's content to its token map, drop tokens, write the linked layout.

    Args:
        content: supplier -> its ``for_research`` folder.
        token_maps: supplier -> the TTP's folder for that supplier (``token_map.parquet``).
        out: the linked folder (written under a temporary name, renamed when complete).
        project: the project this linkage is for; token maps made for another are refused.
        executor: where the partitions run (None: in process, :class:`execution.LocalExecutor`).
        partitions: K; the linked files are byte-identical for every K (:mod:`linkage.partitioned`).

    Raises:
        ExtractNotFoundError, ExtractFormatError, LinkageError: see :func:`linkage.inputs.check_inputs`.
    """
    out = Path(out)
    paths = {**{f"content.{s}": Path(p) for s, p in content.items()},
             **{f"token_maps.{s}": Path(p) for s, p in token_maps.items()}}
    with claim_output(out, overwrite=overwrite, inputs=paths):  # before anything is read
        return _link(content, token_maps, out, project=project, overwrite=overwrite,
                     executor=executor or LocalExecutor(), partitions=partitions)


def _link(content: dict[str, Path], token_maps: dict[str, Path], out: Path, *, project: str,
          overwrite: bool, executor: Executor, partitions: int) -> LinkageResult:
    began = time.perf_counter()
    inputs = check_inputs(content, token_maps, project=project, suppliers=_SUPPLIERS)
    key_id = inputs[_SUPPLIERS[0]].map_manifest["project_key_id"]

    with staging(out, overwrite=overwrite) as tmp:
        rows = _write_linked(inputs, tmp, executor=executor, partitions=partitions, out=out)
        report = linkage_report(tmp, passes=partitions)  # a pass per partition: its persons at a time
        report["project"] = project
        # The TTP's fallback: counts per method and reason, and its precision estimated by linking
        # BSN-linked records again as if their BSN were missing (real data have no truth).
        report["fallback"] = inputs["ehr"].map_manifest.get("fallback", {"not_run": "token maps made before FBv1"})
        (tmp / "linkage_report.json").write_text(json.dumps(report, indent=2, default=str))
        (tmp / "manifest.json").write_text(json.dumps({
            "project": project, "project_key_id": key_id,
            "batches": {s: i.content_manifest["batch_id"] for s, i in inputs.items()}, "rows": rows,
        }, indent=2))
    return LinkageResult(out, project, report, time.perf_counter() - began)
