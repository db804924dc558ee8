"""The executor and partition count a command's configuration names (``executor``, ``partitions``).

``executor`` is a Hydra config group (conf/executor/: local, processes, dask, spark): each file
has ``name:`` and that executor's options, unset options ``null``. A plain mapping of the same
shape, as a library caller or an old configuration gives it, works the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from execution.executors import Executor, open_executor
from execution.memory import checked_partitions

__all__ = ["executor_from_config", "executor_settings", "partitions_from_config"]


def executor_settings(cfg: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``cfg.executor`` as (name, the options that are set), without starting anything."""
    settings = dict(cfg.get("executor") or {})
    name = settings.pop("name", "local")
    return str(name), {str(k): v for k, v in settings.items() if v is not None}


def executor_from_config(cfg: Mapping[str, Any]) -> Executor:
    """``cfg.executor``: ``{name: local|processes|dask|spark, <options of that executor>}``, opened."""
    name, options = executor_settings(cfg)
    return open_executor(name, **options)


def partitions_from_config(cfg: Mapping[str, Any]) -> int:
    """``cfg.partitions``: 1 <= K <= 4096 (1, the default, is the unpartitioned run)."""
    return checked_partitions(cfg.get("partitions", 1))
