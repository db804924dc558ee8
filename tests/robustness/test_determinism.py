"""Running a stage twice on the same input gives byte-identical outputs (issue 6).

Every file is compared byte for byte, manifests and reports included. The generator's extracts
are covered by ``tests/integration/test_generator.py`` (same seed, identical Parquet files; its
manifest records the wall time and so differs). The supplier step is random by design: fresh
record tokens per run, so that two deliveries cannot be joined without the TTP; from there on
(TTP, linkage, study) the same input must give the same bytes, whatever the thread scheduling.

One exception, person-level and not an aggregate: the linked tables hold the same rows in a
different order from run to run (polars' streaming join does not keep the left order), so they
are compared as sorted frames; the linkage report and manifest are compared byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest
from omegaconf import OmegaConf
from polars.testing import assert_frame_equal

from cohort.config import parse_study
from cohort.output import write_study
from cohort.study import run_study
from extracts.codelists import load_catalogue
from extracts.generator.run import GenerationResult
from linkage.link import link
from pseudonymisation.keys import generate_key
from pseudonymisation.supplier import run_supplier_step
from pseudonymisation.ttp import run_ttp_step

CONF = Path(__file__).resolve().parents[2] / "conf"
SUPPLIERS = ("ehr", "claims")


def digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``, by relative path."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    assert files, f"nothing written under {folder}"
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.mark.parametrize("study", ["seed_study", "respiratory_cardio_by_age_sex"])
def test_study_run_twice_on_the_same_linked_folder_gives_byte_identical_tables(
    study: str, tiny_linked: Path, tmp_path: Path
) -> None:
    raw = OmegaConf.to_container(OmegaConf.load(CONF / "study" / f"{study}.yaml"))
    config = parse_study(raw, load_catalogue(CONF / "conditions" / "seed_study.yaml"))  # type: ignore[arg-type]
    manifest = json.loads((tiny_linked / "manifest.json").read_text())
    for run in ("first", "second"):
        write_study(run_study(tiny_linked, config), tmp_path / run, config, linked_manifest=manifest)
    first = digests(tmp_path / "first")
    assert {"prevalence.parquet", "care_use.parquet", "manifest.json"} <= set(first)
    assert digests(tmp_path / "second") == first


def test_ttp_and_linkage_run_twice_give_byte_identical_outputs(
    tiny_extracts: GenerationResult, tmp_path: Path
) -> None:
    network = generate_key(tmp_path / "keys" / "network.key", "network")
    ttp_key = generate_key(tmp_path / "keys" / "ttp.key", "ttp")
    for supplier in SUPPLIERS:
        run_supplier_step(tiny_extracts.out / supplier, supplier, network, tmp_path / supplier)
    inputs = {s: tmp_path / s / "for_ttp" for s in SUPPLIERS}
    for run in ("ttp1", "ttp2"):
        run_ttp_step(inputs, ttp_key, "determinism", tmp_path / run)
    assert digests(tmp_path / "ttp2") == digests(tmp_path / "ttp1")
    content = {s: tmp_path / s / "for_research" for s in SUPPLIERS}
    maps = {s: tmp_path / "ttp1" / s for s in SUPPLIERS}
    for run in ("linked1", "linked2"):
        link(content, maps, tmp_path / run, project="determinism")
    first, second = digests(tmp_path / "linked1"), digests(tmp_path / "linked2")
    assert first.keys() == second.keys()
    for name in ("linkage_report.json", "manifest.json"):
        assert second[name] == first[name], name
    for name in (n for n in first if n.endswith(".parquet")):
        a, b = (pl.read_parquet(tmp_path / run / name) for run in ("linked1", "linked2"))
        assert_frame_equal(a.sort(a.columns), b.sort(b.columns), check_exact=True)
