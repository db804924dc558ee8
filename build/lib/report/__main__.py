"""``pfl-report``: the HTML report of a release folder.

    pfl-report release=work/demo/release out=work/demo/report.html

Settings are ``key=value`` arguments like every ``pfl-`` command, parsed here without Hydra: the
report is for anyone who receives a release, outside the secure environment too, so it needs no
configuration folder and writes no run log beside the report (Hydra writes ``pfl-logs/`` into the
working folder). It imports nothing from the engine; it runs the independent auditor (``audit``)
on the release first and refuses one that fails (exit 11) unless ``show_failed=true``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from report.document import ReportResult, write_report
from report.errors import ReportError, SettingsError

__all__ = ["EXIT_CODES", "main", "parse"]

# The engine's codes (docs/exit-codes.md) that this command can end with, in its words.
EXIT_CODES: dict[int, tuple[str, str]] = {
    0: ("ok", "the report was written, complete"),
    1: ("error", "a file of the release differs from the manifest's SHA-256 (changed or damaged)"),
    2: ("configuration", "a setting is missing, unknown or invalid (out is a folder or inside the release)"),
    3: ("input missing", "the folder is not a release (no manifest.json) or a file it lists is missing"),
    4: ("unreadable file", (
        "the manifest or a table cannot be read or does not follow docs/release-format.md "
        "(e.g. a value present under a hidden status)")),
    9: ("output exists", "the report file exists; pass overwrite=true to replace it"),
    10: ("storage refused", "permission denied, read-only file system, disk or quota full"),
    11: ("release refused", ("the release fails the independent audit (see pfl-audit); no report was written. "
                             "show_failed=true makes one under a warning banner")),
    70: ("internal error", "a bug; reported without its message (PFL_DEBUG=1 shows it on test data)"),
    130: ("interrupted", "Ctrl-C or SIGINT; no report was written"),
}

_SETTINGS = {"release": True, "out": True, "overwrite": False, "show_failed": False}

HELP = """pfl-report: the HTML report of a release folder: care use per condition and discipline
(the seed's figures 59-68, reference years side by side), prevalence, referrals, attrition, top
groups, ACSC admissions, withheld tables and the disclosure policy. Made from the release folder
alone, after checking every file against the manifest's SHA-256 and running the independent
audit (pfl-audit without a ledger): a release that fails it gets no report. Hidden values are
shown as hidden with the release's reason, never as a number. One HTML file with inline CSS and
SVG: no script, no network, readable offline.

Required settings:
  release=FOLDER      the release folder (out of pfl-release; docs/release-format.md)
  out=FILE            the HTML file to write (outside the release folder)
Optional:
  overwrite=true      replace an existing report file
  show_failed=true    make the report of a release that fails the audit anyway, with a red
                      banner at the top of the page: THIS RELEASE FAILS THE INDEPENDENT AUDIT

Example:
  pfl-report release=work/demo/release out=work/demo/report.html

Exit codes (docs/exit-codes.md):
{codes}
"""


def _help() -> str:
    codes = "\n".join(f"  {code:>3}  {name}: {when}" for code, (name, when) in EXIT_CODES.items())
    return HELP.format(codes=codes)


def parse(argv: Sequence[str]) -> dict[str, str]:
    """``key=value`` arguments -> settings; every problem is named at once (exit 2)."""
    settings: dict[str, str] = {}
    problems = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            problems.append(f"{arg!r} is not key=value")
        elif key not in _SETTINGS:
            problems.append(f"unknown setting {key!r} (expected {', '.join(_SETTINGS)})")
        else:
            settings[key] = value
    missing = [k for k, required in _SETTINGS.items() if required and not settings.get(k)]
    if missing:
        problems.append(f"missing setting(s): {', '.join(missing)}")
    for flag in ("overwrite", "show_failed"):
        if settings.get(flag, "false").lower() not in ("true", "false"):
            problems.append(f"{flag}: expected true or false")
    if problems:
        msg = "configuration: " + "; ".join(problems) + " (see --help)"
        raise SettingsError(msg)
    return settings


def _summary(result: ReportResult) -> str:
    hidden = ", ".join(f"{n} {s.replace('-', ' ')}" for s, n in sorted(result.hidden.items())) or "none"
    withheld = ", ".join(result.withheld) or "none"
    audit = ("passes the independent audit" if result.audit.passed
             else "FAILS THE INDEPENDENT AUDIT (made because show_failed=true; do not publish)")
    return (f"report of release {result.release_id} written to {result.out}: "
            f"{len(result.figures)} figures; values hidden by the release: {hidden}; "
            f"withheld tables: {withheld}; the release {audit}")


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def run(argv: Sequence[str]) -> int:
    """The command's body: returns its exit code."""
    if any(a in ("-h", "--help") for a in argv):
        print(_help())
        return 0
    try:
        settings = parse(argv)
        result = write_report(Path(settings["release"]), Path(settings["out"]),
                              overwrite=settings.get("overwrite", "false").lower() == "true",
                              show_failed=settings.get("show_failed", "false").lower() == "true")
    except ReportError as exc:
        return _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return _fail("interrupted: no report was written", 130)
    except MemoryError:
        return _fail("out of memory", 70)
    except Exception as exc:  # the last line of defence: the text could quote a value
        if os.environ.get("PFL_DEBUG") == "1":
            raise
        return _fail(f"internal error ({type(exc).__name__}); please report it. The message is "
                     "withheld because it may contain data values.", 70)
    print(_summary(result), file=sys.stderr)
    return 0


def main() -> None:
    try:
        code = run(sys.argv[1:])
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. pfl-report --help | head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    sys.exit(code)


if __name__ == "__main__":
    main()
