"""``pfl-audit``: check a release folder independently of the engine that made it.

    pfl-audit release=work/demo/release
    pfl-audit release=work/demo/release ledger=work/demo/ledger report=audit.json

Settings are ``key=value`` arguments (no Hydra: the auditor depends on nothing of the engine).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from audit.errors import AuditError
from audit.floor import FLOOR
from audit.verdict import Report, audit_release

__all__ = ["EXIT_CODES", "main"]

EXIT_CODES = {
    0: ("ok", "the release passes the audit"),
    1: ("error", ("the release fails the audit: a blocking finding (a checksum mismatch included), "
                 "or a check could not be completed (fail closed)")),
    2: ("configuration", ("a setting is missing, unknown or malformed, or report= would replace a file of the "
                          "release or the ledger, or a file that is not an earlier audit report")),
    3: ("input missing", ("the folder is not a release (no manifest.json) or a file it lists is missing; or ledger= "
                          "names no ledger or one without the copy of a release it lists, or study= no study "
                          "folder: the audit never checks less than asked")),
    4: ("unreadable file", ("the manifest or a table cannot be read or does not follow docs/release-format.md, "
                            "or the ledger's index or record of the release cannot be read")),
    10: ("storage refused", ("the JSON report cannot be written (disk or quota full, read-only or missing folder, "
                             "permission denied): the verdict is printed, no report file is left")),
    70: ("internal error", "a bug; reported without its message (PFL_DEBUG=1 shows it on test data)"),
    130: ("interrupted", "Ctrl-C or SIGINT; no report was written"),
}
SETTINGS = {"release": "the release folder to audit (required)",
            "ledger": "the release ledger: adds A5 over earlier releases, and A2/A4 with the steward's record",
            "study": "the study folder the release was made from: re-checks the magnitude rules on its statistics",
            "report": ("where to write the JSON report (default: <release>.audit.json beside the folder; "
                       "never inside the release, the ledger or the study folder)"),
            "min_threshold": "the lowest threshold T a release may use (default 10, the floor; only higher)"}

HELP = f"""pfl-audit: check a release folder independently of the engine that made it: checksums,
the tables' structure, A1 and A3 with integer programs (A2, A4 with the steward's record),
derived counts, visible counts, percentages, magnitudes (costs), identifiers; with a ledger, A5
over every earlier release; with the study folder, the p %-rule and dominance of every shown cost. Prints a verdict per table, writes a JSON report, exits non-zero unless it passes.

Settings (key=value):
{chr(10).join(f"  {k}=...{' ' * (16 - len(k))}{v}" for k, v in SETTINGS.items())}

Example:
  pfl-audit release=work/demo/release ledger=work/demo/ledger report=work/demo/audit.json

Exit codes (docs/release-format.md):
{chr(10).join(f"  {code:>3}  {name}: {when}" for code, (name, when) in EXIT_CODES.items())}
"""


def _fail(message: str, code: int) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def parse(argv: list[str]) -> dict[str, str]:
    """``key=value`` arguments; every problem is a configuration error (exit 2)."""
    settings: dict[str, str] = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            _fail(f"configuration: expected key=value arguments, got {arg!r} (see --help)", 2)
        if key not in SETTINGS:
            _fail(f"configuration: unknown setting {key!r}; expected one of {sorted(SETTINGS)} (see --help)", 2)
        settings[key] = value
    if not settings.get("release"):
        _fail("configuration: missing setting(s): release (give it as release=FOLDER; see --help)", 2)
    if "min_threshold" in settings and not settings["min_threshold"].isdigit():
        _fail("configuration: min_threshold: expected a whole number", 2)
    if int(settings.get("min_threshold", FLOOR.threshold)) < FLOOR.threshold:
        _fail(f"configuration: min_threshold: the floor is T = {FLOOR.threshold} (disclosure.md); "
              "the auditor can be made stricter, never looser", 2)
    return settings


def check_report_target(report: Path, release: Path, ledger: Path | None, study: Path | None = None) -> None:
    """Refuse (exit 2) a report path that would replace the release, the ledger or a foreign file.

    The report is renamed over its target: ``report=<release>/manifest.json`` would replace the
    very manifest under audit, ``report=<ledger>/ledger.json`` the steward's ledger. Allowed: a
    new file outside both folders, or an earlier audit report (its ``format`` says so).
    """
    if report.is_symlink():
        _fail("configuration: report: a symbolic link; give the report file's own path", 2)
    target = report.resolve()
    for name, folder in (("release", release), ("ledger", ledger), ("study", study)):
        if folder is not None and target.is_relative_to(folder.resolve()):
            _fail(f"configuration: report: inside the {name} folder; write the report outside it "
                  "(the default is <release>.audit.json beside the release)", 2)
    if target.is_dir():
        _fail("configuration: report: a folder; give a file name (e.g. report=audit.json)", 2)
    if target.exists():
        try:
            earlier = json.loads(target.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            earlier = None
        if not (isinstance(earlier, dict) and str(earlier.get("format", "")).startswith("pfl-audit-report/")):
            _fail("configuration: report: the file exists and is not an audit report; the auditor "
                  "replaces only its own earlier reports", 2)


def show(report: Report) -> None:
    """The verdict per table and the blocking findings, on standard output."""
    print(f"audit of {report.release} ({report.mode} mode; T = {report.policy.threshold}, margin "
          f"{report.policy.margin_percent} %; {report.earlier_releases} earlier release(s))")
    for name, table in report.tables.items():
        verdict = table["verdict"].upper()
        counts = f" ({table['shown']} values shown, {table['hidden']} hidden)" if "shown" in table else ""
        reason = f": {table['reason']}" if table.get("reason") else ""
        print(f"  {name}: {verdict}{counts}{reason}")
        for finding in table["findings"]:
            if not finding["advisory"]:
                cells = ", ".join(finding["cells"][:3]) + (" ..." if len(finding["cells"]) > 3 else "")
                print(f"      {finding['check']}: {finding['message']}" + (f" [{cells}]" if cells else ""))
    print(f"verdict: {'PASS' if report.passed else 'FAIL'} in {report.seconds:.1f} s")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(HELP)
        return
    settings = parse(argv)
    release = Path(settings["release"])
    report_path = Path(settings.get("report") or release.with_name(f"{release.name}.audit.json"))
    check_report_target(report_path, release, Path(settings["ledger"]) if settings.get("ledger") else None,
                        Path(settings["study"]) if settings.get("study") else None)
    try:
        report = audit_release(release, ledger=Path(settings["ledger"]) if settings.get("ledger") else None,
                               min_threshold=int(settings.get("min_threshold", FLOOR.threshold)),
                               study=Path(settings["study"]) if settings.get("study") else None)
        show(report)
        report.write(report_path)
    except AuditError as exc:  # ReportWriteError (exit 10) too: the verdict printed above stands
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted; no report was written", 130)
    except OSError as exc:  # reading the release or the ledger
        _fail(f"{exc.strerror or type(exc).__name__} ({exc.filename})", 4 if exc.filename else 1)
    except Exception as exc:  # the last line of defence of a command
        if os.environ.get("PFL_DEBUG") == "1":
            raise
        _fail(f"internal error ({type(exc).__name__}); please report it. The message is withheld because it "
              "may contain data values.", 70)
    print(f"report: {report_path}")
    sys.exit(0 if report.passed else 1)


if __name__ == "__main__":
    main()
