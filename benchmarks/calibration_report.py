"""Print the calibration table of a generated extract: measured vs published, with tolerance.

    .venv/bin/python benchmarks/calibration_report.py work/extracts/demo
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from calibration_queries import calibration_table  # noqa: E402

from extracts.codelists import load_catalogue  # noqa: E402
from extracts.generator.run import DEFAULT_CATALOGUE  # noqa: E402


def main() -> None:
    root = Path(sys.argv[1])
    rows = calibration_table(root, load_catalogue(DEFAULT_CATALOGUE))
    print(f"{'check':45s} {'measured':>9s} {'published':>9s} {'tolerance':>9s}")
    for name, measured, target, tol in rows:
        flag = "" if abs(measured - target) <= tol else "  <-- outside"
        print(f"{name:45s} {measured:9.3f} {target:9.3f} {tol:9.3f}{flag}")


if __name__ == "__main__":
    main()
