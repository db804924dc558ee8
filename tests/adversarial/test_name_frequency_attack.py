"""A frequency attack on the name encodings the TTP holds re-identifies no more than chance (issue 13, item 8).

The attacker, the attack and what chance means: :mod:`adversarial.frequency_attack`. On a population
of ``_RECORDS`` surnames drawn by Dutch frequencies, the attack on the filters the TTP holds (keyed
with a sub-key of ``K_net``, balanced, permuted) names no more records than frequency alignment on
opaque labels (the equality and frequency leak that any deterministic encoding has, exact tokens
included). The same attack succeeds when a hardening is taken away: with the key in the attacker's
hands (an unkeyed scheme: positions from public hash functions) its dictionary names nearly every
record; without balancing, the Hamming weight tells the name's number of bigrams and the attack
names far more than chance. Figures: ``docs/security-boundaries.md`` (measured with
``pytest tests/adversarial/test_name_frequency_attack.py -s``).
"""

from __future__ import annotations

import math

import pytest

from adversarial.frequency_attack import (
    Population,
    attack,
    hardened,
    opaque_rate,
    population,
    seeded_key,
    unbalanced,
    uninformed_rate,
)
from pseudonymisation.keys import Key

_RECORDS = 200_000  # about a tenth of a nivel-size claims register's names: frequencies well estimated


@pytest.fixture(scope="module")
def pop() -> Population:
    return population(_RECORDS, seed=20230101)


@pytest.fixture(scope="module")
def network_key() -> Key:
    return seeded_key("network")


def _sigma(rate: float) -> float:
    return math.sqrt(rate * (1 - rate) / _RECORDS)


def test_chance_levels_are_below_the_attack_on_equal_names(pop: Population) -> None:
    chance = opaque_rate(pop)
    print(f"\nuninformed guess {uninformed_rate(pop):.4f}; frequency alignment of equal names {chance:.4f}")
    # Equal names are frequent enough to be aligned by rank at the head of the distribution.
    assert uninformed_rate(pop) < chance


def test_frequency_attack_on_the_ttp_name_filters_reidentifies_no_more_than_chance(
    pop: Population, network_key: Key
) -> None:
    result = attack(hardened(network_key, pop.names), pop, attacker_key=seeded_key("attacker"), balanced=True)
    chance = opaque_rate(pop)
    print(f"\nhardened filters: attack {result['rate']:.4f}, chance {chance:.4f}")
    assert result["named_by_dictionary"] == 0
    assert result["rate"] <= chance + 1e-12


def test_frequency_attack_succeeds_on_unkeyed_filters(pop: Population, network_key: Key) -> None:
    # Unkeyed: the attacker computes the positions as the encoder does (here: it holds the key).
    result = attack(hardened(network_key, pop.names), pop, attacker_key=network_key, balanced=True)
    print(f"\nunkeyed filters: attack {result['rate']:.4f}")
    assert result["rate"] > 0.99
    assert result["named_by_dictionary"] / _RECORDS > 0.99


def test_frequency_attack_succeeds_on_unbalanced_filters(pop: Population, network_key: Key) -> None:
    result = attack(unbalanced(network_key, pop.names), pop, attacker_key=seeded_key("attacker"), balanced=False)
    chance = opaque_rate(pop)
    print(f"\nunbalanced keyed filters: attack {result['rate']:.4f}, chance {chance:.4f}")
    assert result["named_by_dictionary"] == 0
    assert result["rate"] > chance + 10 * _sigma(chance)
