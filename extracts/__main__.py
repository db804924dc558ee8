"""``pfl-generate``: generate synthetic supplier extracts with known truth.

Examples::

    pfl-generate preset=tiny out=/tmp/tiny
    pfl-generate preset=nivel defects.bsn_missing=0.01
    pfl-generate --help
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from execution import Executor
from execution.config import executor_from_config
from execution.memory import generator_in_flight
from extracts.atomic import check_output
from extracts.errors import ConfigError
from extracts.targets import check_target
from extracts.cli import CONF_DIR, console, flag, guarded, run_hydra
from extracts.codelists import ConditionCatalogue, parse_catalogue
from extracts.generator.config import GeneratorConfig, config_from_mapping
from extracts.generator.run import GenerationResult, generate


def generator_config(cfg: DictConfig) -> GeneratorConfig:
    """The frozen generator settings of a composed Hydra config (preset + overrides)."""
    raw = OmegaConf.to_container(cfg.preset, resolve=True)
    raw.update(
        seed=int(cfg.seed),
        output_format=str(cfg.get("output_format", "parquet")),
        defects=OmegaConf.to_container(cfg.defects, resolve=True) if "defects" in cfg else {},
    )
    return config_from_mapping(raw)  # type: ignore[arg-type]


def catalogue_of(cfg: DictConfig) -> ConditionCatalogue:
    """The condition catalogue selected in the config group ``conditions``."""
    return parse_catalogue(OmegaConf.to_container(cfg.conditions, resolve=True))  # type: ignore[arg-type]


def run_generation(
    config: GeneratorConfig, catalogue: ConditionCatalogue, out: Path, *, overwrite: bool,
    executor: Executor | None = None, in_flight: int | None = None,
) -> GenerationResult:
    """Generate with a progress bar on the terminal (blocks on ``executor``, ``in_flight`` at once)."""
    check_target(out)  # before the progress bar; generate() checks again under the output's lock
    check_output(out, overwrite=overwrite)
    with Progress(
        TextColumn("generating [bold]{task.fields[preset]}[/] extracts"),
        BarColumn(),
        TextColumn("blocks"),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("gen", total=None, preset=config.preset)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return generate(config, out, catalogue=catalogue, overwrite=overwrite, progress=progress,
                        executor=executor, in_flight=in_flight)


def in_flight_of(cfg: DictConfig, config: GeneratorConfig, executor: Executor) -> int:
    """Blocks drawn at once: the executor's workers, fewer if ``memory_gb`` says so."""
    memory_gb = cfg.get("memory_gb")
    try:
        return generator_in_flight(chunk_persons=config.chunk_persons, memory_gb=memory_gb, workers=executor.workers)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


@hydra.main(config_path=str(CONF_DIR), config_name="generate", version_base="1.3")
def _main(cfg: DictConfig) -> None:
    def body() -> None:
        config = generator_config(cfg)
        try:
            executor = executor_from_config(cfg)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"executor: {exc}") from None
        with executor:
            result = run_generation(config, catalogue_of(cfg), Path(cfg.out), overwrite=flag(cfg, "overwrite"),
                                    executor=executor, in_flight=in_flight_of(cfg, config, executor))
        total = sum(v for k, v in result.rows.items() if not k.startswith("truth/"))
        console.print(
            f"wrote {total:,} rows of extracts in {result.seconds:.1f} s to [bold]{result.out}[/]"
            f" (ehr/, claims/; ground truth in truth/)", soft_wrap=True,
        )

    guarded(body)


def main() -> None:
    run_hydra(_main)


if __name__ == "__main__":
    main()
