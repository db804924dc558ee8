"""``pfl-study``: run a study (a config a researcher writes) on a linked folder.

    pfl-study linked=work/demo/linked out=work/demo/study
    pfl-study study=respiratory_cardio_by_age_sex linked=... out=...
    pfl-study study=diabetes_incidence_2021 linked=... out=...     (schema 2: docs/study-schema.md)
    pfl-study linked=... out=... partitions=8 executor=processes   (partitioned: the same tables)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
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

from cohort.compile import check_runnable, legacy_config, run_compiled
from cohort.config import StudyConfig
from cohort.convert import load_study
from cohort.output import population_fingerprint, write_study
from cohort.partitioned import layout_persons
from cohort.population import RULES
from cohort.schema import Study
from execution import Executor
from extracts.atomic import check_output, claim_output, scratch
from extracts.cli import CONF_DIR, console, execution_settings, flag, guarded, require_settings, run_hydra
from extracts.codelists import parse_catalogue
from extracts.errors import ConfigError, ExtractNotFoundError
from extracts.targets import check_target


def study_of(cfg: DictConfig) -> Study:
    """The checked study of a composed config (groups ``study`` and ``conditions``), schema 1 or 2."""
    catalogue = parse_catalogue(OmegaConf.to_container(cfg.conditions, resolve=True))  # type: ignore[arg-type]
    study = load_study(OmegaConf.to_container(cfg.study, resolve=True), catalogue)  # type: ignore[arg-type]
    check_runnable(study)
    return study


def study_config(cfg: DictConfig) -> StudyConfig:
    """The seed design's configuration of a composed config (the demo runs the seed design only)."""
    study = study_of(cfg)
    if study.cohort_type != "prevalence" or tuple(c.rule for c in study.criteria) != RULES or any(
            c.name != c.rule for c in study.criteria) or any(c.codes is not None for c in study.conditions):
        msg = ("study config: study: the demo runs prevalence studies with the criteria X1-X7 in order; "
               "expected such a study, or run this one with pfl-study")
        raise ConfigError(msg)
    return legacy_config(study)


def run(
    config: Study, linked: Path, out: Path, *, overwrite: bool,
    progress: Callable[[str, int, int], None] | None = None, executor: Executor | None = None, partitions: int = 1,
) -> tuple[Path, dict, float]:
    # Where out may go and its lock, for the whole run: before anything is read, not after the work.
    with claim_output(out, overwrite=overwrite, inputs={"linked": linked}):
        manifest_path = linked / "manifest.json"
        if not manifest_path.is_file():
            msg = f"{linked}: not a linked folder (no manifest.json); run the linkage stage first"
            raise ExtractNotFoundError(msg)
        began = time.perf_counter()
        with scratch(out) as folder:  # person-level claim units: beside the output, never in $TMPDIR
            tables = run_compiled(linked, config, progress=progress, scratch=folder, executor=executor,
                                  partitions=partitions)
            # Inside the scratch: a partitioned run's persons behind the counts are files there.
            path = write_study(tables, out, legacy_config(config), linked_manifest=json.loads(manifest_path.read_text()),
                               population=population_fingerprint(linked), overwrite=overwrite, study=config)
    return path, {k: v.height for k, v in tables.items()}, time.perf_counter() - began


@hydra.main(config_path=str(CONF_DIR), config_name="run_study", version_base="1.3")
def _main(cfg: DictConfig) -> None:
    def body() -> None:
        require_settings(cfg, "linked", "out")
        config = study_of(cfg)  # fails on a bad config before any data is read
        check_target(Path(cfg.out), inputs={"linked": Path(cfg.linked)})  # and before a progress bar shows
        check_output(Path(cfg.out), overwrite=flag(cfg, "overwrite"))
        with (execution_settings(cfg, stage="study", inputs=[Path(cfg.linked)],
                                 persons=lambda: layout_persons(Path(cfg.linked))) as (executor, partitions),
              Progress(SpinnerColumn(), TextColumn(f"study {config.name}: {{task.description}}"), BarColumn(),
                       MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar):
            task = bar.add_task("reading the linked folder", total=None)

            def progress(step: str, done: int, total: int) -> None:
                bar.update(task, description=step, completed=done, total=total)

            path, rows, seconds = run(config, Path(cfg.linked), Path(cfg.out), overwrite=flag(cfg, "overwrite"),
                                      progress=progress, executor=executor, partitions=partitions)
        console.print(f"study {config.name} done in {seconds:.1f} s: {', '.join(f'{k} {v}' for k, v in rows.items())} rows",
                      soft_wrap=True)
        console.print(f"tables (pre-disclosure aggregates, not releasable): {path}", soft_wrap=True)

    guarded(body)


def main() -> None:
    run_hydra(_main)


if __name__ == "__main__":
    main()
