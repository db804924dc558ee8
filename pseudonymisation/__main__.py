"""Command-line entry points of the pseudonymisation roles.

    pfl-keygen --role network --out /secure/network.key     a new key file (owner-only)
    pfl-supplier supplier=ehr extract=... out=... network_key=/secure/network.key
    pfl-ttp project=seed-study ttp_key=... out=... inputs.ehr=... inputs.claims=...

Keys are given by reference (path or ``env:NAME``); the composed configuration Hydra writes
holds the reference only.
"""

from __future__ import annotations

import os

import argparse
import re
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig
from rich.table import Table

from extracts.cli import (
    CONF_DIR,
    activity,
    console,
    execution_settings,
    exit_code_lines,
    flag,
    text_setting,
    guarded,
    require_settings,
    run_hydra,
)
from extracts.errors import ConfigError
from extracts.targets import check_target
from pseudonymisation.encodings import LINKAGE_LABEL
from pseudonymisation.errors import PseudonymisationError
from pseudonymisation.keys import ROLES, generate_key, key_id_text, load_key
from pseudonymisation.matching import FallbackSettings
from pseudonymisation.supplier import run_supplier_step
from pseudonymisation.ttp import run_ttp_step


def keygen_main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="pfl-keygen", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Create a new random 32-byte key in an owner-only file (0600). Run once per\n"
        "linkage network (--role network, shared by the suppliers) and once at the TTP (--role ttp).\n"
        "Commands name a key by path or env:NAME, never by value; an existing file is never replaced.",
        epilog="example:\n  pfl-keygen --role network --out /secure/network.key\n\n"
        f"exit codes (docs/exit-codes.md):\n{exit_code_lines()}",
    )
    parser.add_argument("--role", choices=ROLES, required=True,
                        help="network: K_net, shared by the suppliers; ttp: K_ttp, the TTP's master key")
    parser.add_argument("--out", type=Path, required=True, help="key file to create (never overwritten)")
    args = parser.parse_args(argv)

    def body() -> None:
        key = generate_key(args.out, args.role)
        print(f"created {key.role} key {key.id} in {args.out} (mode 0600); keep it out of configs and repositories")

    guarded(body)


def _key_file(setting: str, reference: object) -> dict[str, Path]:
    """The key file a reference names, as an input that ``out`` must stay clear of (none for env:)."""
    path = Path(str(reference))
    return {setting: path} if not str(reference).startswith("env:") and path.is_file() else {}


@hydra.main(config_path=str(CONF_DIR), config_name="supplier", version_base="1.3")
def _supplier(cfg: DictConfig) -> None:
    def body() -> None:
        require_settings(cfg, "supplier", "extract", "out", "network_key", "max_quarantine_share")
        if cfg.supplier not in ("ehr", "claims"):
            msg = "supplier: expected 'ehr' or 'claims'"
            raise ConfigError(msg)
        check_target(Path(cfg.out), inputs={"extract": Path(cfg.extract), **_key_file("network_key", cfg.network_key)})
        key = load_key(str(cfg.network_key), "network", setting="network_key")
        if cfg.get("memory_gb") is not None:
            # A budget: polars' Parquet scans prefetch many row groups ahead by default (on
            # nivel380k's claims validation held 1.65 GB so, 1.16 GB with 2); read when a scan starts.
            os.environ.setdefault("POLARS_ROW_GROUP_PREFETCH_SIZE", "2")
        with (execution_settings(cfg, stage=f"supplier_{cfg.supplier}", inputs=[Path(cfg.extract)]) as (executor, k),
              activity(f"validating and pseudonymising the {cfg.supplier} extract")):
            result = run_supplier_step(Path(cfg.extract), str(cfg.supplier), key, Path(cfg.out),
                                       max_quarantine_share=float(cfg.max_quarantine_share),
                                       overwrite=flag(cfg, "overwrite"), executor=executor, partitions=k,
                                       linkage=_linkage(cfg))
        table = Table(title=f"supplier step ({cfg.supplier}) done in {result.seconds:.1f} s")
        table.add_column("BSN status")
        table.add_column("rows", justify="right")
        for row in result.report["bsn_status"]:
            table.add_row(row["bsn_status"], f"{row['rows']:,}")
        console.print(table)
        console.print(f"persons pseudonymised: {result.persons:,}; network key {result.network_key_id}")
        console.print(f"for the TTP:                {result.out / 'for_ttp'}", soft_wrap=True)
        console.print(f"for the research environment: {result.out / 'for_research'}", soft_wrap=True)
        console.print(f"stays here (quarantine counts): {result.out / 'supplier_report.json'}", soft_wrap=True)

    guarded(body)


def _linkage(cfg: DictConfig) -> str:
    """``linkage``: a label of this linkage, or empty (conf/supplier.yaml); refused when malformed (exit 2)."""
    from omegaconf import OmegaConf

    value = OmegaConf.select(cfg, "linkage", default="")
    if value is None:
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool) or (
            str(value) and not re.match(LINKAGE_LABEL, str(value))):
        msg = "linkage: expected a label of letters, digits, '.', '_' or '-' (at most 64), e.g. 2026-q4"
        raise ConfigError(msg)
    return str(value)


def _fallback_settings(cfg: DictConfig) -> FallbackSettings:
    """``fallback.*`` of conf/ttp.yaml as frozen settings; numbers must be numbers (exit 2)."""
    from omegaconf import OmegaConf

    values = {}
    for key in ("threshold", "margin"):
        value = OmegaConf.select(cfg, f"fallback.{key}", default=None)
        if isinstance(value, bool) or not isinstance(value, int | float):
            msg = f"fallback.{key}: expected a number of bits (see conf/ttp.yaml)"
            raise ConfigError(msg)
        values[key] = float(value)
    try:
        return FallbackSettings(enabled=flag(cfg, "fallback.enabled"), **values)
    except PseudonymisationError as exc:
        raise ConfigError(str(exc)) from None


@hydra.main(config_path=str(CONF_DIR), config_name="ttp", version_base="1.3")
def _ttp(cfg: DictConfig) -> None:
    def body() -> None:
        require_settings(cfg, "project", "out", "ttp_key", *(f"inputs.{s}" for s in cfg.inputs or ()))
        project = text_setting(cfg, "project")
        if not cfg.inputs:
            msg = "inputs: expected one for_ttp folder per supplier, e.g. +inputs.ehr=/path +inputs.claims=/path"
            raise ConfigError(msg)
        check_target(Path(cfg.out), inputs={**{f"inputs.{k}": Path(v) for k, v in cfg.inputs.items()},
                                            **_key_file("ttp_key", cfg.ttp_key)})
        key = load_key(str(cfg.ttp_key), "ttp", setting="ttp_key")
        settings = _fallback_settings(cfg)
        with (execution_settings(cfg, stage="ttp", inputs=[Path(v) for v in cfg.inputs.values()]) as (executor, k),
              activity(f"mapping {len(cfg.inputs)} suppliers' pseudonyms for project {project}")):
            result = run_ttp_step({str(s): Path(v) for s, v in cfg.inputs.items()}, key, project,
                                  Path(cfg.out), expected_network_key_id=key_id_text(cfg.expected_network_key_id),
                                  overwrite=flag(cfg, "overwrite"), fallback=settings, executor=executor,
                                  partitions=k)
        table = Table(title=f"TTP step for project {result.project} done in {result.seconds:.1f} s")
        for column in ("supplier", "tokens received", "distinct P1"):
            table.add_column(column, justify="right")
        for supplier, row in result.report["suppliers"].items():
            table.add_row(supplier, f"{row['tokens_received']:,}", f"{row['distinct_p1']:,}")
        console.print(table)
        console.print(f"collisions: {result.report['collisions']}; project key {result.project_key_id}")
        fallback = result.report["fallback"]
        if "not_run" in fallback:
            console.print(f"fallback linkage not run: {fallback['not_run']}")
        else:
            methods = ", ".join(f"{k} {v:,}" for k, v in fallback["linked_by_method"].items()) or "none"
            console.print(f"fallback: {fallback['records']:,} EHR records without a usable BSN; linked: {methods}")
        console.print(f"token maps for the research environment: {result.out}", soft_wrap=True)

    guarded(body)


def supplier_main() -> None:
    run_hydra(_supplier)


def ttp_main() -> None:
    run_hydra(_ttp)


if __name__ == "__main__":
    sys.exit("use pfl-keygen, pfl-supplier or pfl-ttp")
