"""Fallback linkage on a generated preset: quality against the truth, blocking, and the time it adds.

    .venv/bin/python benchmarks/fallback_linkage.py --preset demo
    .venv/bin/python benchmarks/fallback_linkage.py --preset nivel --work /big/fallback --partitions 8
    .venv/bin/python benchmarks/fallback_linkage.py --extracts /path/to/generated   # already generated
    .venv/bin/python benchmarks/fallback_linkage.py --preset demo --registered-patients 250000
    .venv/bin/python benchmarks/fallback_linkage.py --preset demo --defect insurance_number_missing=0.5
    .venv/bin/python benchmarks/fallback_linkage.py --extracts /big/nivel --supplied /big/nv \
        --network-key /big/nv/network.key        # reuse supplier steps already run (ehr/, claims/)

Steps: generate the preset (or take ``--extracts``); where the extracts lack the contract-v2
identifier columns, plant them (``tests/fallback_planting.py``: identifiers per true person, noise
on the EHR side, the BSN removed from ``--missing-bsn-share`` of the EHR records that had a valid
one); supplier steps; the TTP step without and with the fallback; linkage. Then, with the truth:

- precision and recall per method of the cascade, on the EHR records without a usable BSN;
  recall over the *truly linkable* ones: their person has a claims token not linked by BSN to
  another EHR record (one-to-one: a person already linked by BSN is no candidate);
- blocking: pairs completeness (true pairs among the candidate pairs) and reduction ratio;
- unique / ambiguous / unlinked shares; the precision the TTP estimated on BSN-linked records;
- time the fallback adds to TTP + linkage.

Targets (issue 13): recall >= 90 % at precision >= 0.999 on the truly linkable records without a
usable BSN; blocking keeps >= 99.5 % of true pairs; under 20 % added to TTP + linkage time.
Prints aggregates only.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from extracts.generator.config import config_from_mapping  # noqa: E402
from extracts.generator.run import generate  # noqa: E402
from fallback_planting import plant_identifiers  # noqa: E402
from linkage.link import link  # noqa: E402
from pseudonymisation.comparison import candidate_pairs, read_encodings  # noqa: E402
from pseudonymisation.keys import generate_key, load_key  # noqa: E402
from pseudonymisation.matching import FallbackSettings  # noqa: E402
from pseudonymisation.prf import p1_from_bsn, parse_bsn_column, stage1_key  # noqa: E402
from pseudonymisation.supplier import run_supplier_step  # noqa: E402
from pseudonymisation.ttp import run_ttp_step  # noqa: E402

SUPPLIERS = ("ehr", "claims")


CPU: dict[str, float] = {}


def _timed(f, *args, **kwargs):
    """Wall seconds; CPU seconds of this process (all threads) go to ``CPU`` under the same name."""
    began, cpu = time.perf_counter(), time.process_time()
    out = f(*args, **kwargs)
    CPU["_last"] = time.process_time() - cpu
    return out, time.perf_counter() - began


def _extracts(args: argparse.Namespace, work: Path) -> Path:
    source = Path(args.extracts) if args.extracts else None
    if source is None:
        raw = yaml.safe_load((ROOT / "conf" / "preset" / f"{args.preset}.yaml").read_text())
        if args.registered_patients:  # a preset scaled: practices in proportion
            raw["practices"] = max(1, round(raw["practices"] * args.registered_patients / raw["registered_patients"]))
            raw["registered_patients"] = args.registered_patients
        defects = {**(raw.get("defects") or {}),
                   **{k: float(v) for k, v in (d.split("=", 1) for d in args.defect)}}
        source = generate(config_from_mapping({**raw, "seed": args.seed, "defects": defects}), work / "generated").out
    patients = next((source / "ehr").glob("patients.*"))
    columns = pl.read_parquet_schema(patients) if patients.suffix == ".parquet" else \
        pl.read_csv(patients, n_rows=0).schema
    if "family_name" in columns:
        return source
    planted = plant_identifiers(source, work / "planted", missing_bsn_share=args.missing_bsn_share, seed=args.seed)
    print(f"planted identifiers for {planted['persons']:,} persons; BSN removed from "
          f"{planted['bsn_removed']:,} EHR records")
    return work / "planted"


def _claims_person(extracts: Path, network_key, claims_ids: pl.DataFrame) -> pl.DataFrame:
    """claims token -> true person, through the stage-1 pseudonyms of the truth's BSNs."""
    persons = pl.read_parquet(extracts / "truth" / "persons.parquet").select("person", "bsn")
    value, status = parse_bsn_column(persons["bsn"])
    ok = (status == "valid").to_numpy()
    p1 = p1_from_bsn(stage1_key(network_key), value[ok])
    p1_col = pl.Series("p1", [bytes(r) for r in p1], dtype=pl.Binary)
    by_p1 = pl.DataFrame({"person": persons["person"].filter(pl.Series(ok)), "p1": p1_col})
    return claims_ids.join(by_p1, on="p1", how="inner").select(pl.col("token").alias("claims_token"), "person")


def _quality(extracts: Path, supplied: Path, work: Path, network_key, report: dict) -> dict:
    ehr_ids = pl.read_parquet(supplied / "ehr" / "for_ttp" / "identifiers.parquet")
    claims_ids = pl.read_parquet(supplied / "claims" / "for_ttp" / "identifiers.parquet")
    claims_person = _claims_person(extracts, network_key, claims_ids)
    truth = pl.read_parquet(extracts / "truth" / "patients.parquet").select("patient_id", "person")
    patients = pl.read_parquet(supplied / "ehr" / "for_research" / "patients.parquet").select("patient_id", "token")
    records = patients.join(truth, on="patient_id").filter(~pl.col("token").is_in(ehr_ids["token"].implode()))
    ehr_map = pl.read_parquet(work / "ttp" / "ehr" / "token_map.parquet")
    claims_map = pl.read_parquet(work / "ttp" / "claims" / "token_map.parquet")
    by_p2 = claims_map.select("p2", pl.col("token").alias("claims_token")).join(claims_person, on="claims_token")
    linked = ehr_map.filter(pl.col("link_method") != "bsn").join(by_p2, on="p2").select(
        "token", pl.col("link_method").cast(pl.String), pl.col("person").alias("linked_person"))
    bsn_linked = ehr_ids.join(claims_ids, on="p1").select(pl.col("token_right").alias("claims_token"))
    candidates = claims_person.join(bsn_linked, on="claims_token", how="anti")
    records = records.join(linked, on="token", how="left").with_columns(
        linkable=pl.col("person").is_in(candidates["person"].implode()),
        correct=pl.col("linked_person") == pl.col("person"),
    )
    out: dict = {"records_without_usable_bsn": records.height,
                 "truly_linkable": int(records["linkable"].sum()), "by_method": {}}
    for method in ("insurance_number", "probabilistic"):
        m = records.filter(pl.col("link_method") == method)
        out["by_method"][method] = {"linked": m.height, "correct": int(m["correct"].sum()),
                                    "precision": round(float(m["correct"].mean() or 0), 6) if m.height else None}
    all_linked = records.filter(pl.col("link_method").is_not_null())
    found = int(records.filter("linkable")["correct"].fill_null(False).sum())
    out["precision"] = round(float(all_linked["correct"].mean() or 0), 6) if all_linked.height else None
    out["recall_truly_linkable"] = round(found / max(int(records["linkable"].sum()), 1), 6)
    out["blocking"] = _blocking(supplied, records, candidates)
    fb = report["fallback"]
    n = max(fb["records"], 1)
    ambiguous = sum(v for k, v in fb["unlinked_by_reason"].items() if k.startswith("ambiguous"))
    out["shares"] = {"unique": round(sum(fb["linked_by_method"].values()) / n, 4),
                     "ambiguous": round(ambiguous / n, 4),
                     "unlinked": round((fb["records"] - sum(fb["linked_by_method"].values()) - ambiguous) / n, 4)}
    out["ttp_estimate_on_bsn_linked"] = fb["estimated_on_bsn_linked_records"]
    return out


def _blocking(supplied: Path, records: pl.DataFrame, candidates: pl.DataFrame) -> dict:
    """Pairs completeness: of the (query, candidate row of the query's own person) pairs, the share
    the blocking keeps; and its reduction ratio."""
    ehr = read_encodings(supplied / "ehr" / "for_ttp" / "encodings.parquet")
    claims = read_encodings(supplied / "claims" / "for_ttp" / "encodings.parquet")
    q_rows = np.flatnonzero(np.isin(ehr.token, records["token"].to_numpy()))
    t_rows = np.flatnonzero(np.isin(claims.token, candidates["claims_token"].to_numpy()))
    q, t = ehr.take(q_rows), claims.take(t_rows)
    qi, ti, stats = candidate_pairs(q, t)
    q_person = pl.DataFrame({"token": q.token}).join(records.select("token", "person"), on="token", how="left")
    t_person = pl.DataFrame({"claims_token": t.token}).join(candidates, on="claims_token", how="left")
    qp, tp = q_person["person"].to_numpy(), t_person["person"].to_numpy()
    true_total = pl.DataFrame({"person": qp}).join(pl.DataFrame({"person": tp}), on="person").height
    kept = int((qp[qi] == tp[ti]).sum())
    return {"candidate_pairs": stats["candidate_pairs"], "reduction_ratio": stats["reduction_ratio"],
            "true_pairs": true_total, "pairs_completeness": round(kept / max(true_total, 1), 6)}


def _who_links(who: dict) -> dict:
    """The linkage report's bias table, with the practices summarised (a row per practice is long)."""
    out = {k: v for k, v in who.items() if k != "practice_id"}
    shares = sorted(r["linked_share"] for r in who.get("practice_id", []) if r.get("linked_share") is not None)
    if shares:
        out["practice_id"] = {"practices": len(shares), "linked_share_min": shares[0],
                              "linked_share_median": shares[len(shares) // 2], "linked_share_max": shares[-1]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--extracts", help="generated extracts (with truth/) instead of generating")
    parser.add_argument("--work", help="work folder (default: a temporary one)")
    parser.add_argument("--registered-patients", type=int, help="scale the preset to this many GP patients")
    parser.add_argument("--missing-bsn-share", type=float, default=0.05,
                        help="only where identifiers are planted (extracts without contract-v2 columns)")
    parser.add_argument("--defect", action="append", default=[],
                        help="a generator defect rate, e.g. --defect insurance_number_missing=0.5 (repeatable)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--partitions", type=int, default=1,
                        help="K partitions of the supplier steps (less memory at nivel size; same outputs)")
    parser.add_argument("--supplied", help="a folder whose ehr/ and claims/ hold supplier steps already run on "
                                           "--extracts (skips them; give their --network-key)")
    parser.add_argument("--network-key", help="with --supplied: the network key those supplier steps used")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        extracts = _extracts(args, work)
        if bool(args.supplied) != bool(args.network_key):
            parser.error("--supplied and --network-key go together")
        supplied = Path(args.supplied) if args.supplied else work
        network = load_key(Path(args.network_key), "network") if args.supplied else \
            generate_key(work / "keys" / "network.key", "network")
        ttp_key = generate_key(work / "keys" / "ttp.key", "ttp")
        times = {}
        cpu = {}
        for s in SUPPLIERS if not args.supplied else ():
            # In K partitions where asked (issue 14): at nivel size one process's claims step peaked
            # above 20 GB and was killed on a 23 GB machine.
            _, times[f"supplier_{s}"] = _timed(run_supplier_step, extracts / s, s, network, work / s,
                                               partitions=args.partitions, linkage="bench")
            cpu[f"supplier_{s}"] = CPU["_last"]
        inputs = {s: supplied / s / "for_ttp" for s in SUPPLIERS}
        _, times["ttp_bsn_only"] = _timed(run_ttp_step, inputs, ttp_key, "bench", work / "ttp0",
                                          fallback=FallbackSettings(enabled=False))
        cpu["ttp_bsn_only"] = CPU["_last"]
        ttp, times["ttp_with_fallback"] = _timed(run_ttp_step, inputs, ttp_key, "bench", work / "ttp")
        cpu["ttp_with_fallback"] = CPU["_last"]
        linked, times["link"] = _timed(link, {s: supplied / s / "for_research" for s in SUPPLIERS},
                                       {s: work / "ttp" / s for s in SUPPLIERS}, work / "linked", project="bench")
        cpu["link"] = CPU["_last"]
        quality = _quality(extracts, supplied, work, network, ttp.report)
        def added(t: dict) -> float:
            return round((t["ttp_with_fallback"] - t["ttp_bsn_only"]) / (t["ttp_bsn_only"] + t["link"]), 4)

        # On a shared machine wall time counts others' work too; CPU seconds are this run's own.
        print(json.dumps({"data": args.extracts or args.preset, "quality": quality,
                          "who_links": _who_links(linked.report["who_links"]),
                          "seconds": {k: round(v, 2) for k, v in times.items()},
                          "cpu_seconds": {k: round(v, 2) for k, v in cpu.items()},
                          "fallback_added_share_of_ttp_and_linkage": {"wall": added(times), "cpu": added(cpu)}},
                         indent=1))


if __name__ == "__main__":
    main()
