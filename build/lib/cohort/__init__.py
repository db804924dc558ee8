"""Condition cohorts: the study population, exclusions, conditions and outcomes (``shared/spec/method.md``).

The cohort stage writes pre-disclosure study tables; disclosure control (:mod:`disclosure`) and
releases (:mod:`release`) are the next floors of the data path.
"""
