"""Condition cohorts, exclusions, outcomes, disclosure control, release and audit.

Follows ``shared/spec/method.md`` and ``shared/spec/disclosure.md``.
"""
