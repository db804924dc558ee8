"""The generator's blocks (issue 14, item 4): the same bytes on every executor, in any number at once."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import TINY
from execution import Executor
from extracts.codelists import load_catalogue
from extracts.generator.block import draw_block
from extracts.generator.config import config_from_mapping
from extracts.generator.parts import TableFiles
from extracts.generator.plan import make_plan
from extracts.generator.run import DEFAULT_CATALOGUE, _global_tables, generate

BLOCKS = replace(TINY, registered_patients=1_000, practices=2, chunk_persons=500)  # 3,615 persons: 8 blocks
CONF = Path(__file__).resolve().parents[2] / "conf" / "preset"


def _digest(folder: Path) -> dict[str, str]:
    return {str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(folder.rglob("*")) if f.is_file() and f.name != "manifest.json"}


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The blocks drawn one after the other in this process straight into one writer per table
    (the generator before blocks ran as partition functions): the reference bytes."""
    out = tmp_path_factory.mktemp("straight")
    catalogue = load_catalogue(DEFAULT_CATALOGUE)
    plan = make_plan(BLOCKS, catalogue)
    files = {name: TableFiles(out / name, "parquet") for name in ("ehr", "claims", "truth")}
    defects: Counter[str] = Counter()
    _global_tables(plan, files["ehr"], files["claims"])
    for index in range(plan.n_chunks):
        draw_block(plan, index, files["ehr"], files["claims"], files["truth"], defects)
    for f in files.values():
        f.close()
    (out / "truth" / "defects.json").write_text(json.dumps(dict(sorted(defects.items())), indent=2))
    assert plan.n_chunks == 8
    return _digest(out)


def test_generator_blocks_give_the_same_bytes_on_every_executor_and_in_flight(
    executor_case: tuple[Executor, int], straight: dict[str, str], tmp_path: Path,
) -> None:
    executor, k = executor_case
    result = generate(BLOCKS, tmp_path / "out", executor=executor, in_flight=k)
    assert _digest(result.out) == straight
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # parts and staging are gone


def test_generator_csv_blocks_are_one_file_with_one_header(tmp_path: Path) -> None:
    from execution import LocalExecutor

    result = generate(replace(BLOCKS, output_format="csv"), tmp_path / "out", executor=LocalExecutor(), in_flight=3)
    for table in ("ehr/contacts", "claims/claims", "ehr/practices"):
        lines = (result.out / f"{table}.csv").read_text().splitlines()
        assert len(lines) == result.rows[table] + 1  # every block's rows, one header
        assert sum(line == lines[0] for line in lines) == 1


@pytest.mark.parametrize("preset", ["tiny", "demo"])
def test_generator_tiny_and_demo_presets_are_one_block(preset: str) -> None:
    # One block: the extracts of these presets are exactly what the generator wrote before blocks
    # (tests and calibrations depend on them).
    config = config_from_mapping(OmegaConf.to_container(OmegaConf.load(CONF / f"{preset}.yaml")))
    assert make_plan(config, load_catalogue(DEFAULT_CATALOGUE)).n_chunks == 1


def test_generator_refuses_in_flight_below_one(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="in_flight"):
        generate(TINY, tmp_path / "out", in_flight=0)


@pytest.mark.parametrize(("overrides", "blocks"), [
    ([], 1),  # in process: one block at a time
    (["executor=processes", "executor.workers=4"], 4),
    (["executor=processes", "executor.workers=4", "memory_gb=7"], 2),  # 0.25 + 2 x (0.25 + 2.175) GB
])
def test_generate_command_draws_the_workers_blocks_at_once_capped_by_memory_gb(
    overrides: list[str], blocks: int,
) -> None:
    from hydra import compose, initialize_config_dir

    from execution.config import executor_from_config
    from extracts.__main__ import generator_config, in_flight_of

    with initialize_config_dir(config_dir=str(CONF.parent), version_base="1.3"):
        cfg = compose(config_name="generate", overrides=["preset=nivel", *overrides])
    config = generator_config(cfg)
    with executor_from_config(cfg) as executor:
        assert in_flight_of(cfg, config, executor) == blocks


def test_generate_command_refuses_a_budget_below_one_block() -> None:
    from hydra import compose, initialize_config_dir

    from execution.config import executor_from_config
    from extracts.__main__ import generator_config, in_flight_of
    from extracts.errors import ConfigError

    with initialize_config_dir(config_dir=str(CONF.parent), version_base="1.3"):
        cfg = compose(config_name="generate", overrides=["preset=nivel", "memory_gb=1"])
    with executor_from_config(cfg) as executor, pytest.raises(ConfigError, match="memory_gb=1 is below the"):
        in_flight_of(cfg, generator_config(cfg), executor)


def test_plan_bsns_drawn_in_slices_are_the_bsns_drawn_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from extracts.generator import plan as plan_module

    at_once = plan_module._bsns(np.random.default_rng(5), 50_000)
    monkeypatch.setattr(plan_module, "_BSN_SLICE", 997)  # 57 slices, the last one short
    sliced = plan_module._bsns(np.random.default_rng(5), 50_000)
    assert np.array_equal(at_once, sliced) and len(np.unique(sliced)) == 50_000
