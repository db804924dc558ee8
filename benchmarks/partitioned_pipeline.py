"""The whole pipeline per executor and partition count, side by side (issue 14, items 4 and 6).

Runs the installed commands, stage by stage, once per *setting* (executor, workers, K):

    generate  supplier_ehr  supplier_claims  ttp  link  study  release  audit

and prints for each stage and setting the wall time, the peak memory of the largest process
(``ru_maxrss`` of the stage's finished process tree, ``resource.getrusage(RUSAGE_CHILDREN)``),
the peak of all its processes together (the stage's process tree sampled from ``/proc`` every
0.1 s) and the speed-up over the first setting.

K per setting: ``1`` (today's run) or ``auto``: the K that :func:`execution.memory.choose_partitions`
picks for the stage's input from ``--memory-gb`` and the workers. The generator's blocks are fixed
by the preset (``chunk_persons``): its output never depends on K; it draws ``workers`` blocks at
once, fewer if ``--memory-gb`` says so; its K column is its number of blocks. A stage whose
command has no ``partitions`` setting runs unpartitioned and is reported with ``K=-``; a stage
whose command has the setting but does not partition yet reports the K it was given.

    .venv/bin/python benchmarks/partitioned_pipeline.py                         # demo
    .venv/bin/python benchmarks/partitioned_pipeline.py --preset nivel --memory-gb 4
    .venv/bin/python benchmarks/partitioned_pipeline.py --extracts /data/nivel --settings local:1:auto --memory-gb 4
    .venv/bin/python benchmarks/partitioned_pipeline.py --settings local:1:1 processes:2:auto dask:2:auto
    .venv/bin/python benchmarks/partitioned_pipeline.py --preset country +preset.insured_persons=178000 ...

A setting is ``EXECUTOR:WORKERS:K`` (``K`` a number or ``auto``); any executor registered in
:data:`execution.EXECUTORS` (``dask``, ``spark`` once installed) plugs in by name. Extra
``+key=value`` arguments go to ``pfl-generate`` (e.g. a fraction of the country preset).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from execution.memory import choose_partitions, input_rows  # noqa: E402

BIN = Path(sys.executable).parent
STAGES = ("generate", "supplier_ehr", "supplier_claims", "ttp", "link", "study", "release", "audit")
PARTITIONED = {"supplier_ehr", "supplier_claims", "ttp", "link", "study"}  # commands with partitions=


@dataclass(frozen=True)
class Setting:
    executor: str
    workers: int
    k: str  # "1", "8" or "auto"

    @classmethod
    def parse(cls, text: str) -> Setting:
        name, workers, k = text.split(":")
        return cls(name, int(workers), k)

    def __str__(self) -> str:
        return f"{self.executor}:{self.workers}:{self.k}"


def _tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants now (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            children.setdefault(int(fields[1]), []).append(int(entry.name))
            rss[int(entry.name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            continue
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total


# Runs the stage's command and reports the largest ru_maxrss of its finished process tree: the
# wrapper's own RUSAGE_CHILDREN covers the command and every process it started, and no other stage.
WRAPPER = ("import resource, subprocess, sys; rc = subprocess.call(sys.argv[1:]); "
           "print('maxrss_kib', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
           "sys.exit(rc)")


def run_stage(args: list[str], cwd: Path, env: dict[str, str]) -> dict[str, float]:
    """Run one command; its wall time, largest process and sampled peak of its process tree."""
    began = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", WRAPPER, *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.1):
            peak[0] = max(peak[0], _tree_rss(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    stop.set()
    sampler.join()
    seconds = time.perf_counter() - began
    if proc.returncode != 0:
        tail = [line for line in (err or out).strip().splitlines() if not line.startswith("maxrss_kib")][-3:]
        raise RuntimeError(f"{Path(args[0]).name} exited {proc.returncode}: {tail}")
    largest = int(next(line.split()[1] for line in err.splitlines() if line.startswith("maxrss_kib")))
    return {"seconds": seconds, "largest_gb": largest * 1024 / 1e9, "tree_gb": peak[0] / 1e9}


def _stage_rows(stage: str, work: Path) -> int:
    inputs = {"supplier_ehr": [work / "extracts" / "ehr"], "supplier_claims": [work / "extracts" / "claims"],
              "ttp": [work / "supplier" / s / "for_ttp" for s in ("ehr", "claims")],
              "link": [work / "supplier" / s / "for_research" for s in ("ehr", "claims")],
              "study": [work / "linked"]}
    return sum(input_rows(folder) for folder in inputs.get(stage, []))


def _command(stage: str, work: Path, setting: Setting, k: int | None, memory_gb: float | None,
             extra: list[str]) -> list[str]:
    executor = [f"executor={setting.executor}", f"executor.workers={setting.workers}"]
    part = [f"partitions={k}"] if k is not None else []
    out = work / stage.replace("supplier_", "supplier/")
    if stage == "generate":
        gen = executor + ([f"memory_gb={memory_gb}"] if memory_gb else [])
        return [str(BIN / "pfl-generate"), f"preset={extra[0]}", f"out={work / 'extracts'}", *gen, *extra[1:]]
    if stage.startswith("supplier_"):
        s = stage.split("_", 1)[1]
        return [str(BIN / "pfl-supplier"), f"supplier={s}", f"extract={work / 'extracts' / s}", f"out={out}",
                f"network_key={work / 'keys' / 'network.key'}", *executor, *part]
    if stage == "ttp":
        return [str(BIN / "pfl-ttp"), "project=bench", f"out={work / 'ttp'}", f"ttp_key={work / 'keys' / 'ttp.key'}",
                f"+inputs.ehr={work / 'supplier/ehr/for_ttp'}", f"+inputs.claims={work / 'supplier/claims/for_ttp'}",
                *executor, *part]
    if stage == "link":
        return [str(BIN / "pfl-link"), f"out={work / 'linked'}", "project=bench",
                f"content.ehr={work / 'supplier/ehr/for_research'}",
                f"content.claims={work / 'supplier/claims/for_research'}",
                f"token_maps.ehr={work / 'ttp/ehr'}", f"token_maps.claims={work / 'ttp/claims'}", *executor, *part]
    if stage == "study":
        return [str(BIN / "pfl-study"), f"linked={work / 'linked'}", f"out={work / 'study'}", *executor, *part]
    if stage == "release":
        return [str(BIN / "pfl-release"), f"study={work / 'study'}", f"out={work / 'release'}",
                f"ledger={work / 'ledger'}"]
    return [str(BIN / "pfl-audit"), f"release={work / 'release'}", f"ledger={work / 'ledger'}"]


def _takes_partitions(stage: str) -> bool:
    """Whether the stage's command has a ``partitions`` setting (the engineers' branches add them)."""
    conf = {"supplier_ehr": "supplier", "supplier_claims": "supplier", "ttp": "ttp", "link": "link",
            "study": "run_study"}.get(stage)
    return conf is not None and "\npartitions:" in (ROOT / "conf" / f"{conf}.yaml").read_text()


def run_setting(setting: Setting, work: Path, memory_gb: float | None, extra: list[str],
                extracts: Path | None = None) -> dict[str, dict]:
    """Every stage under one setting, in ``work`` (fresh keys, fresh ledger).

    ``extracts``: a generated extract folder to start from (read only; the generator is not run).
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    work.mkdir(parents=True)
    if extracts is not None:
        (work / "extracts").symlink_to(extracts.resolve(), target_is_directory=True)
    subprocess.run([str(BIN / "pfl-keygen"), "--role", "network", "--out", str(work / "keys" / "network.key")],
                   check=True, capture_output=True)
    subprocess.run([str(BIN / "pfl-keygen"), "--role", "ttp", "--out", str(work / "keys" / "ttp.key")],
                   check=True, capture_output=True)
    results: dict[str, dict] = {}
    for stage in STAGES:
        if stage == "generate" and extracts is not None:
            continue
        if stage == "release":
            subprocess.run([str(BIN / "pfl-ledger"), "init", "--ledger", str(work / "ledger")],
                           check=True, capture_output=True, cwd=work)
        k: int | None = None
        if stage in PARTITIONED and _takes_partitions(stage):
            k = 1 if setting.k == "1" else int(setting.k) if setting.k != "auto" else choose_partitions(
                stage, rows=_stage_rows(stage, work), memory_gb=memory_gb or 4.0, workers=setting.workers)
        r = run_stage(_command(stage, work, setting, k, memory_gb, extra), work, env)
        if stage == "generate":  # its partitions are its blocks, fixed by the preset
            manifest = json.loads((work / "extracts" / "manifest.json").read_text())
            k = -(-manifest["persons"] // manifest["config"]["chunk_persons"])
        results[stage] = {**r, "k": k}
        print(f"  {setting!s:<18}{stage:<16}{r['seconds']:>8.1f} s{r['tree_gb']:>7.2f} GB"
              f"{r['largest_gb']:>7.2f} GB  K={'-' if k is None else k}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="demo", help="generator preset (demo, nivel, national, country)")
    parser.add_argument("--settings", nargs="+", default=["local:1:1", "processes:2:auto"],
                        help="EXECUTOR:WORKERS:K, K a number or auto (default: local:1:1 processes:2:auto)")
    parser.add_argument("--memory-gb", type=float, default=None, help="memory budget for K=auto (default 4)")
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temp dir)")
    parser.add_argument("--extracts", type=Path, default=None,
                        help="an extract folder pfl-generate made (read only): start there, not with the generator")
    args, extra = parser.parse_known_args()
    settings = [Setting.parse(s) for s in args.settings]
    work = args.work or Path(tempfile.mkdtemp(prefix="pfl-partitioned-"))
    print(f"preset {args.preset}, work {work}; columns: wall, peak of all processes, largest process")
    table = {str(s): run_setting(s, work / f"{i}-{s.executor}", args.memory_gb, [args.preset, *extra], args.extracts)
             for i, s in enumerate(settings)}
    first = table[str(settings[0])]
    print(f"\n{'stage':<16}" + "".join(f"{str(s):>34}" for s in settings))
    for stage in (s for s in STAGES if s in first):
        cells = []
        for s in settings:
            r = table[str(s)][stage]
            speed = first[stage]["seconds"] / r["seconds"]
            k = "-" if r["k"] is None else r["k"]
            cells.append(f"{r['seconds']:7.1f}s {r['tree_gb']:5.2f}/{r['largest_gb']:4.2f}GB K={k!s:<3}x{speed:4.2f}")
        print(f"{stage:<16}" + "".join(f"{c:>34}" for c in cells))
    totals = [sum(r["seconds"] for r in table[str(s)].values()) for s in settings]
    print(f"{'total':<16}" + "".join(f"{t:>33.1f}s" for t in totals))
    (work / "partitioned_pipeline.json").write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
