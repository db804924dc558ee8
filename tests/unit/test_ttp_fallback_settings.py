"""The TTP's fallback settings from conf/ttp.yaml (issue 13): numbers fixed in advance, checked."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from extracts.errors import ConfigError
from pseudonymisation.__main__ import _fallback_settings
from pseudonymisation.matching import FallbackSettings


def _cfg(**fallback: object):
    return OmegaConf.create({"fallback": {"enabled": True, "threshold": 18.0, "margin": 5.0, **fallback}})


def test_fallback_settings_default_from_conf_ttp_yaml() -> None:
    conf = OmegaConf.load("conf/ttp.yaml")
    assert _fallback_settings(conf) == FallbackSettings(enabled=True, threshold=18.0, margin=5.0)


@pytest.mark.parametrize(("key", "value"), [("threshold", "high"), ("margin", True), ("threshold", None),
                                            ("margin", -1.0), ("enabled", "yes")])
def test_fallback_settings_refuse_what_is_not_a_setting(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"fallback.{key}"):
        _fallback_settings(_cfg(**{key: value}))


def test_fallback_settings_can_switch_the_fallback_off() -> None:
    assert _fallback_settings(_cfg(enabled=False)).enabled is False
