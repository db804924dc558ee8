"""Linkage in the research environment: supplier content + project pseudonyms -> linked tables.

Sees no BSN, no stage-1 pseudonym and no key (``shared/spec/pseudonymisation.md``, step 3).
"""
