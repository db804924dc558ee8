"""The executor and partition count a command's configuration names (``executor``, ``partitions``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from execution.executors import Executor, open_executor

__all__ = ["executor_from_config", "partitions_from_config"]


def executor_from_config(cfg: Mapping[str, Any]) -> Executor:
    """``cfg.executor``: ``{name: local|processes|dask|spark, <options of that executor>}``."""
    settings = dict(cfg.get("executor") or {})
    name = settings.pop("name", "local")
    return open_executor(str(name), **{k: v for k, v in settings.items() if v is not None})


def partitions_from_config(cfg: Mapping[str, Any]) -> int:
    """``cfg.partitions``: K >= 1 (1, the default, is the unpartitioned run)."""
    k = cfg.get("partitions", 1)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"partitions must be a whole number >= 1, not {k!r}")
    return k
