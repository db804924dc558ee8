"""The ``executor=`` config group on every stage command (issue 14, item 2).

``executor=local|processes|dask|spark`` picks a file of conf/executor/; ``executor.KEY=VALUE``
sets one of its options. Composed as the commands compose it (Hydra's ``compose``); the packaged
choices only (a ``--config-dir`` cannot add an executor: tests/adversarial/test_cli_hardening.py).
"""

from __future__ import annotations

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from execution.config import executor_settings
from extracts.command_line import CONF_DIR, HydraCommand

COMMANDS = ["supplier", "ttp", "link", "run_study", "demo", "generate"]
OPTIONS = {"local": {"workers"}, "processes": {"workers"}, "dask": {"workers", "address", "threads_per_worker", "tls_ca_file", "tls_cert", "tls_key", "allow_plaintext"},
           "spark": {"workers", "master"}}


def _compose(config: str, *overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name=config, overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=False)  # type: ignore[return-value]


def test_the_executor_group_has_one_file_per_executor_named_as_its_file() -> None:
    files = {p.stem: yaml.safe_load(p.read_text()) for p in sorted((CONF_DIR / "executor").glob("*.yaml"))}
    assert set(files) == set(OPTIONS)
    for stem, content in files.items():
        assert content["name"] == stem
        assert set(content) - {"name"} == OPTIONS[stem], stem


@pytest.mark.parametrize("config", COMMANDS)
def test_every_stage_command_selects_the_local_executor_by_default(config: str) -> None:
    assert "executor" in HydraCommand.named(config).groups()
    cfg = _compose(config)
    assert cfg["executor"] == {"name": "local", "workers": None}
    assert executor_settings(cfg) == ("local", {})
    if config == "generate":  # the generator's partitions are its blocks, fixed by the preset
        assert "partitions" not in cfg
    else:
        assert cfg["partitions"] == 1


@pytest.mark.parametrize("config", COMMANDS)
def test_executor_dask_with_an_address_is_composed_on_every_stage_command(config: str) -> None:
    cfg = _compose(config, "executor=dask", "executor.address=tls://scheduler:8786", "executor.workers=4",
                   "executor.tls_ca_file=/tls/ca.pem", "executor.tls_cert=/tls/c.pem", "executor.tls_key=/tls/c.key")
    assert executor_settings(cfg) == ("dask", {"address": "tls://scheduler:8786", "workers": 4, "allow_plaintext": False,
                                               "tls_ca_file": "/tls/ca.pem", "tls_cert": "/tls/c.pem",
                                               "tls_key": "/tls/c.key"})


def test_executor_spark_takes_a_master_and_processes_takes_workers() -> None:
    assert executor_settings(_compose("run_study", "executor=spark", "executor.master=spark://h:7077")) == (
        "spark", {"master": "spark://h:7077"})
    assert executor_settings(_compose("ttp", "executor=processes", "executor.workers=2")) == (
        "processes", {"workers": 2})


def test_an_option_of_another_executor_is_refused_as_hydra_composes() -> None:
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match="master"):
        _compose("link", "executor=dask", "executor.master=spark://h:7077")


def test_the_old_plain_mapping_still_opens_its_executor() -> None:
    assert executor_settings({"executor": {"name": "processes", "workers": 2}}) == ("processes", {"workers": 2})
    assert executor_settings({}) == ("local", {})


@pytest.mark.parametrize("config", COMMANDS)
def test_every_stage_commands_help_names_the_executors(config: str) -> None:
    text = (CONF_DIR / f"{config}.yaml").read_text()
    help_text = yaml.safe_load(text)["hydra"]["help"]["template"]
    for said in ("executor=local|processes|dask|spark", "executor.address=tls://", "executor.allow_plaintext=true", "executor.master=",
                 "partitions=K", "docs/guide-cluster.md"):
        assert said in help_text, f"{config}: {said}"
