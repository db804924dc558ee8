"""``pfl-release``: a study folder's tables under disclosure control, as a release folder.

    pfl-release study=work/demo/study out=work/demo/release ledger=work/demo/ledger
    pfl-release study=... out=... ledger=... study_policy.threshold=15

The disclosure policy is the ledger's, set by the data steward (``pfl-ledger``): it is not a
setting of this command, and a configuration that tries to give one is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from release.make import ReleaseResult, make_release
from extracts.cli import CONF_DIR, activity, console, flag, guarded, require_settings, run_hydra
from extracts.errors import ConfigError


SETTINGS = ("study", "out", "ledger", "overwrite", "time_limit", "study_policy")


def study_overrides(cfg: DictConfig) -> dict:
    """The study's stricter policy settings (unset keys left out) of a composed config.

    Raises:
        ConfigError: the configuration holds a setting this command does not have, such as a
            ``policy`` (given with ``+policy...`` or by another config file): the policy is the
            ledger's, never the command line's.
    """
    unknown = sorted(str(k) for k in cfg if k not in SETTINGS)
    if unknown:
        msg = (f"unknown setting(s) {unknown}: the disclosure policy is the ledger's, set by the data steward "
               "(pfl-ledger init / tighten); a study may only make it stricter with study_policy.KEY=VALUE")
        raise ConfigError(msg)
    study_raw = OmegaConf.to_container(cfg.study_policy, resolve=True) if cfg.get("study_policy") else {}
    if not isinstance(study_raw, Mapping):
        msg = "study_policy: expected a mapping of policy keys"
        raise ConfigError(msg)
    return {str(k): v for k, v in study_raw.items() if v is not None}


def report(result: ReleaseResult) -> None:
    """The steward's view of a release: hidden values per engine reason, per table."""
    content = result.content
    for note in result.notes:
        console.print(f"note: {note}", soft_wrap=True)
    console.print(f"release {result.release_id} written to {result.out} in {result.seconds:.1f} s "
                  f"(checked against {content.earlier_releases} earlier release(s) in the ledger)", soft_wrap=True)
    for table, reasons in content.hidden_by_reason.items():
        counts = content.status_counts.get(table, {})
        detail = ", ".join(f"{r} {n}" for r, n in reasons.items()) or "nothing hidden"
        console.print(f"  {table}: {counts.get('shown', 0)} values shown; hidden: {detail}", soft_wrap=True)
    for table, why in content.withheld.items():
        console.print(f"  {table}: WITHHELD ({why})", soft_wrap=True)
    cells = ", ".join(f"{r} {n}" for r, n in content.cells_by_reason.items()) or "none"
    console.print(f"hidden quantities by rule (each counted once): {cells}", soft_wrap=True)
    console.print(f"check it independently: pfl-audit release={result.out}", soft_wrap=True)


# Its own config folder: in conf/, "study=FOLDER" would select the config group conf/study/.
@hydra.main(config_path=str(CONF_DIR / "release"), config_name="release", version_base="1.3")
def _main(cfg: DictConfig) -> None:
    def body() -> None:
        require_settings(cfg, "study", "out", "ledger")
        overrides = study_overrides(cfg)
        with activity("protecting the study's tables"):
            result = make_release(Path(cfg.study), Path(cfg.out), ledger=Path(cfg.ledger), overrides=overrides,
                                  overwrite=flag(cfg, "overwrite"), time_limit=float(cfg.time_limit))
        report(result)

    guarded(body)


def main() -> None:
    run_hydra(_main)


if __name__ == "__main__":
    main()
