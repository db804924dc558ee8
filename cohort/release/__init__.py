"""Releases: a study's tables under disclosure control, a manifest, a summary and a ledger.

``docs/release-format.md`` is the format. :func:`cohort.release.make.make_release` is the stage;
``pfl-release`` its command.
"""
