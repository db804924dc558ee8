"""``pfl-demo``: the main job on built-in generated data, with progress and a final summary.

Examples::

    pfl-demo                          # demo preset into work/demo
    pfl-demo preset=tiny work=/tmp/pfl
    pfl-demo preset=tiny linkage=2026-q4   # the fallback's encodings keyed for this linkage
    pfl-demo --help
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from cohort.__main__ import study_config
from extracts.__main__ import catalogue_of, generator_config
from execution.config import partitions_from_config
from extracts.cli import CONF_DIR, console, execution_settings, flag, guarded, run_hydra
from extracts.errors import ConfigError
from extracts.targets import check_target
from pipeline.demo import run_demo
from pipeline.work_folder import check_command_line as check_work_folder
from pseudonymisation.encodings import LINKAGE_LABEL


def _linkage(cfg: DictConfig) -> str | None:
    """``linkage``: this linkage's label for both supplier steps; null: one per population (exit 2 if bad)."""
    value = OmegaConf.select(cfg, "linkage", default=None)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int) or not re.match(LINKAGE_LABEL, str(value)):
        msg = "demo config: linkage: expected a label of letters, digits, '.', '_' or '-' (at most 64), e.g. 2026-q4"
        raise ConfigError(msg)
    return str(value)


@hydra.main(config_path=str(CONF_DIR), config_name="demo", version_base="1.3")
def _main(cfg: DictConfig) -> None:
    def body() -> None:
        config = generator_config(cfg)
        _linkage(cfg)  # a bad label is refused before the work folder is touched
        try:
            partitions_from_config(cfg)  # checked before the work folder is touched; run below
        except ValueError as exc:
            msg = f"demo config: {exc}"
            raise ConfigError(msg) from None
        work = Path(cfg.work)
        check_target(work, setting="work")  # before the progress bar; run_demo checks it again
        with execution_settings(cfg) as (executor, k), Progress(
                SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("starting", total=None)

            def on_stage(name: str) -> None:
                bar.update(task, description=name, completed=0, total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            result = run_demo(config, catalogue_of(cfg), work,
                              max_quarantine_share=float(cfg.max_quarantine_share), study=study_config(cfg),
                              on_stage=on_stage, progress=progress, adopt=flag(cfg, "adopt"), executor=executor,
                              partitions=k, linkage=_linkage(cfg))
        table = Table(title=f"demo finished: outputs under {result.work}")
        for column in ("stage", "seconds", "result", "outputs"):
            table.add_column(column)
        for s in result.stages:
            outputs = "\n".join(str(p.relative_to(result.work)) for p in s.outputs)
            table.add_row(s.name, f"{s.seconds:.1f}", s.summary, outputs)
        console.print(table)

    guarded(body)


def main() -> None:
    # Before Hydra writes its record of the run into <work>/logs: a refused folder gets nothing.
    guarded(lambda: check_work_folder(sys.argv[1:], str(OmegaConf.load(CONF_DIR / "demo.yaml").work)))
    run_hydra(_main)


if __name__ == "__main__":
    main()
