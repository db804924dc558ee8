"""Pseudonymisation as a trusted-third-party step (``shared/spec/pseudonymisation.md``).

The only package that touches BSNs and keys: the supplier step (BSN -> keyed stage-1 pseudonym,
record tokens, identifier and content files) and the TTP step (stage-1 -> project pseudonyms).
"""
