"""The generator's blocks as partition functions on an executor (issue 14, item 4).

The population is cut into fixed blocks of ``chunk_persons`` persons; block ``b`` draws from the
random streams ``(seed, b)`` only, so its rows do not depend on where, when or beside which other
blocks it runs. Each block is a partition function (:func:`generate_block`, the contract of
:mod:`execution`): its argument is the frozen settings, the block number and a scratch folder; it
writes its tables as part files there and returns their names, row counts and defect counts.
The caller appends the parts in block order to one file per table
(:class:`~extracts.generator.parts.TableFiles`): the output never depends on the executor, its
workers or how many blocks ran at once.

Blocks run in *waves* of ``in_flight`` blocks: while wave ``w + 1`` is drawn, the parts of wave
``w`` are appended (and removed), so the scratch folder holds at most two waves and the memory of
the run is ``in_flight`` blocks at once plus one table being appended
(:func:`execution.memory.generator_in_flight` sizes ``in_flight`` from ``memory_gb``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from execution import Executor
from extracts.codelists import ConditionCatalogue
from extracts.generator.block import draw_block
from extracts.generator.config import GeneratorConfig
from extracts.generator.parts import PartSink, TableFiles
from extracts.generator.plan import Plan, make_plan

__all__ = ["BlockResult", "BlockTask", "generate_block", "run_blocks", "save_bsns", "shared_plan"]

SINKS = ("ehr", "claims", "truth")


@dataclass(frozen=True)
class BlockTask:
    """What one block needs: settings, its number and where its parts go (no rows, no keys)."""

    config: GeneratorConfig
    catalogue: ConditionCatalogue
    index: int
    folder: str
    bsns: str | None = None  # the plan's BSNs in a .npy file (save_bsns)


@dataclass(frozen=True)
class BlockResult:
    """A block's part files (sink -> table -> file name), row counts and defect counts."""

    index: int
    parts: dict[str, dict[str, str]] = field(default_factory=dict)
    rows: dict[str, dict[str, int]] = field(default_factory=dict)
    defects: dict[str, int] = field(default_factory=dict)


@lru_cache(maxsize=1)
def shared_plan(config: GeneratorConfig, catalogue: ConditionCatalogue, bsns: str | None = None) -> Plan:
    """The plan of a run, made once per process (a worker draws many blocks of one run).

    ``bsns``: a ``.npy`` file of the plan's BSNs (:func:`save_bsns`), mapped rather than drawn again
    (the country preset draws 24 million candidates); a block reads only its own persons' pages.
    """
    if bsns is None:
        return make_plan(config, catalogue)
    return make_plan(config, catalogue, bsns=np.load(bsns, mmap_mode="r"))


def save_bsns(plan: Plan, folder: Path) -> str:
    """Write the plan's BSNs for the workers (into the run's owner-only scratch folder)."""
    path = folder / "plan-bsns.npy"
    np.save(path, plan.bsns)
    return str(path)


def block_folder(root: str | Path, index: int) -> Path:
    return Path(root) / f"block-{index:06d}"


def generate_block(task: BlockTask) -> BlockResult:
    """Partition function: draw block ``task.index`` into part files under ``task.folder``."""
    plan = shared_plan(task.config, task.catalogue, task.bsns)
    folder = block_folder(task.folder, task.index)
    sinks = {name: PartSink(folder / name, task.config.output_format if name != "truth" else "parquet",
                            header=task.index == 0) for name in SINKS}
    defects: Counter[str] = Counter()
    draw_block(plan, task.index, sinks["ehr"], sinks["claims"], sinks["truth"], defects)
    return BlockResult(
        index=task.index,
        parts={name: dict(s.parts) for name, s in sinks.items()},
        rows={name: dict(s.rows) for name, s in sinks.items()},
        defects=dict(defects),
    )


def _append(files: Mapping[str, TableFiles], root: str, results: list[BlockResult], defects: Counter[str]) -> None:
    for result in sorted(results, key=lambda r: r.index):
        folder = block_folder(root, result.index)
        for name, table_files in files.items():
            table_files.append_parts(folder / name, result.parts[name], result.rows[name])
        defects.update(result.defects)


def run_blocks(
    tasks: list[BlockTask],
    files: Mapping[str, TableFiles],
    *,
    executor: Executor,
    in_flight: int,
    progress: Callable[[int, int], None] | None = None,
) -> Counter[str]:
    """Draw every block on ``executor``, ``in_flight`` at a time, appending parts in block order.

    Returns the defect counts of all blocks.
    """
    if in_flight < 1:
        raise ValueError(f"in_flight must be >= 1, not {in_flight!r}")
    waves = [tasks[i:i + in_flight] for i in range(0, len(tasks), in_flight)]
    defects: Counter[str] = Counter()
    done = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pfl-blocks") as runner:
        pending = runner.submit(executor.map, generate_block, waves[0], stage="generator") if waves else None
        for w, wave in enumerate(waves):
            results = pending.result()  # type: ignore[union-attr]
            if w + 1 < len(waves):  # draw the next wave while this one is appended
                pending = runner.submit(executor.map, generate_block, waves[w + 1], stage="generator")
            _append(files, wave[0].folder, results, defects)
            done += len(wave)
            if progress:
                progress(done, len(tasks))
    return defects
