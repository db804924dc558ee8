"""Releases (the floor after cohort/): a study's tables under disclosure control, a manifest, a summary and a ledger.

``docs/release-format.md`` is the format. :func:`release.make.make_release` is the stage;
``pfl-release`` its command. The population's ledger, with the steward's policy, is created and
tightened by :mod:`release.ledger` (``pfl-ledger``, :mod:`release.steward`);
:mod:`release.transaction` records a release if and only if it is published.
"""
