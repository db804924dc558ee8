"""``pfl-link``: link supplier content through the TTP's token maps (research environment)."""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from extracts.cli import (CONF_DIR, activity, console, execution_settings, flag, guarded, require_settings, run_hydra,
                          text_setting)
from linkage.link import link


@hydra.main(config_path=str(CONF_DIR), config_name="link", version_base="1.3")
def _main(cfg: DictConfig) -> None:
    def body() -> None:
        require_settings(cfg, "out", "project", "content.ehr", "content.claims", "token_maps.ehr",
                         "token_maps.claims")
        inputs = [Path(cfg[side][s]) for side in ("content", "token_maps") for s in ("ehr", "claims")]
        with (execution_settings(cfg, stage="link", inputs=inputs) as (executor, k),
              activity("linking content through the token maps")):
            result = link({s: Path(cfg.content[s]) for s in ("ehr", "claims")},
                          {s: Path(cfg.token_maps[s]) for s in ("ehr", "claims")}, Path(cfg.out),
                          project=text_setting(cfg, "project"), overwrite=flag(cfg, "overwrite"), executor=executor,
                          partitions=k)
        ehr = result.report["ehr"]
        console.print(f"linked {ehr['linked_records']:,} of {ehr['patient_records']:,} EHR patient records "
                      f"({ehr['linked_share']:.1%}) in {result.seconds:.1f} s; project {result.project}")
        console.print(f"unlinked by reason: {ehr['unlinked_by_reason']}")
        methods = ", ".join(f"{k} {v:,}" for k, v in result.report["linked_records_by_method"].items())
        console.print(f"linked records by method of the TTP's cascade: {methods or 'none'}")
        console.print(f"linked layout and linkage report: {result.out}", soft_wrap=True)

    guarded(body)


def main() -> None:
    run_hydra(_main)


if __name__ == "__main__":
    main()
