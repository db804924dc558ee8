"""``pfl-ledger``: the data steward's command for the release ledger of a population.

    pfl-ledger init --ledger /secure/ledgers/nivel-2024                 the spec's default policy
    pfl-ledger init --ledger /secure/ledgers/nivel-2024 --threshold 15  a stricter one
    pfl-ledger tighten --ledger /secure/ledgers/nivel-2024 --threshold 20 --reason "..."
    pfl-ledger show --ledger /secure/ledgers/nivel-2024

The ledger's policy is the one ``pfl-release`` applies: set once, at or above the engine's floor,
when the ledger is created, and only tightened afterwards, each change recorded in the ledger
with its time, the old and new policy and the reason. Options, not Hydra settings: nothing here
is read from a configuration file or search path, and no policy reaches a log folder.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path

from disclosure import FLOOR, Policy
from release.ledger import Ledger, create_ledger, tighten_policy
from extracts.cli import console, exit_code_lines, guarded

__all__ = ["main"]

_OPTIONS = {  # policy key -> (option type, help)
    "threshold": (int, "T: counts of 1..T-1 persons are hidden"),
    "margin": (float, "protection margin: a hidden primary v lies in an interval of +-max(1, ceil(margin v))"),
    "p_percent": (float, "p of the p%%-rule for magnitudes"),
    "dominance_n": (int, "n of the (n, k)-dominance rule"),
    "dominance_k": (float, "k (percent) of the (n, k)-dominance rule"),
}


def _policy_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    for key, (kind, text) in _OPTIONS.items():
        default = f" (default {getattr(FLOOR, key)}, the engine's floor)" if defaults else ""
        parser.add_argument(f"--{key.replace('_', '-')}", dest=key, type=kind, default=None, help=text + default)
    parser.add_argument("--no-publish-zeros", dest="publish_zeros", action="store_const", const=False,
                        default=None, help="hide zero cells too (zeros are published by default)")


def _changes(args: argparse.Namespace) -> dict:
    return {f.name: getattr(args, f.name) for f in fields(Policy) if getattr(args, f.name, None) is not None}


def _line(policy: Policy) -> str:
    zeros = "zeros published" if policy.publish_zeros else "zeros hidden"
    return (f"T = {policy.threshold}, margin {policy.margin}, {zeros}, p% = {policy.p_percent}, "
            f"dominance ({policy.dominance_n}, {policy.dominance_k})")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pfl-ledger", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The data steward's release ledger of one population (the linked data of one project):\n"
        "create it with its disclosure policy, tighten the policy (recorded), or show it.\n"
        "pfl-release applies the ledger's policy and nothing else; no policy below the engine's floor\n"
        f"({_line(FLOOR)}) is accepted. Every command takes --ledger FOLDER (required).",
        epilog="example:\n"
        "  pfl-ledger init --ledger /secure/ledgers/nivel-2024\n"
        "  pfl-ledger tighten --ledger /secure/ledgers/nivel-2024 --threshold 15 --reason \"small regions\"\n\n"
        f"exit codes (docs/exit-codes.md):\n{exit_code_lines()}",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{init,tighten,show}")
    init = commands.add_parser("init", help="create the ledger of a population with its policy")
    init.add_argument("--ledger", type=Path, required=True, help="the ledger folder to create (owner-only)")
    _policy_options(init, defaults=True)
    tighten = commands.add_parser("tighten", help="make the ledger's policy stricter (recorded, never looser)")
    tighten.add_argument("--ledger", type=Path, required=True, help="the ledger folder")
    tighten.add_argument("--reason", required=True, help="why: recorded in the ledger with the time and both policies")
    _policy_options(tighten, defaults=False)
    show = commands.add_parser("show", help="the ledger's population, policy, its history and the releases")
    show.add_argument("--ledger", type=Path, required=True, help="the ledger folder")
    return parser


def _show(path: Path) -> None:
    book = Ledger(path)
    index = book.index()
    policy = book.policy(index)
    population = index.get("population")
    print(f"ledger {index['ledger_id']} at {path}, created {index['created']}")
    shown = "-".join(population[i:i + 4] for i in range(0, 16, 4)) if population else ""
    print(f"population: {shown or 'not yet bound (bound by its first release)'}")
    print(f"policy: {_line(policy)}")
    for change in index["policy_history"]:
        if change.get("action") == "tightened":
            print(f"  {change['time']} tightened: {json.dumps(change['reason'])}: "
                  f"{_line(Policy.from_dict(change['old']))} -> {_line(Policy.from_dict(change['new']))}")
        else:
            print(f"  {change.get('time')} {change.get('action')}: {_line(Policy.from_dict(change['policy']))}")
    print(f"releases: {len(index['releases'])}")
    for entry in index["releases"]:
        print(f"  {entry['release_id']}  {entry.get('created')}  study {entry.get('study')}")


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)

    def body() -> None:
        if args.command == "init":
            policy = Policy(**_changes(args))
            create_ledger(args.ledger, policy)
            console.print(f"created the release ledger {args.ledger} with the policy {_line(policy)}; "
                          "pfl-release applies it to every release of this population", soft_wrap=True)
        elif args.command == "tighten":
            old, new = tighten_policy(args.ledger, _changes(args), reason=args.reason)
            console.print(f"tightened the policy of {args.ledger}: {_line(old)} -> {_line(new)} (recorded)",
                          soft_wrap=True)
        else:
            _show(args.ledger)

    guarded(body)


if __name__ == "__main__":
    main()
