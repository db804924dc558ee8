"""Writing a study's tables: one Parquet file per table and a manifest, atomically.

These are aggregates *before* disclosure control. The manifest says so, and the folder is
never a release: releases are made by the disclosure-control stage from these tables.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import polars as pl

from cohort.config import StudyConfig
from extracts.atomic import staging

__all__ = ["config_hash", "write_study"]

NOT_RELEASABLE = "pre-disclosure aggregates: NOT releasable; run disclosure control first"


def config_hash(config: StudyConfig) -> str:
    payload = json.dumps(asdict(config), sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def write_study(tables: dict[str, pl.DataFrame], out: Path, config: StudyConfig, *, linked_manifest: dict,
                overwrite: bool = False) -> Path:
    out = Path(out)
    with staging(out, overwrite=overwrite) as tmp:
        for name, frame in tables.items():
            frame.write_parquet(tmp / f"{name}.parquet")
        (tmp / "manifest.json").write_text(json.dumps({
            "status": NOT_RELEASABLE,
            "study": config.name,
            "study_config_sha256": config_hash(config),
            "reference_years": list(config.reference_years),
            "conditions": list(config.catalogue.names),
            "project": linked_manifest.get("project"),
            "project_key_id": linked_manifest.get("project_key_id"),
            "rows": {name: frame.height for name, frame in tables.items()},
        }, indent=2))
    return out
