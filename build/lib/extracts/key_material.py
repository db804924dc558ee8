"""Recognising key material where a reference (a path or ``env:NAME``) is expected.

A key is 32 random bytes; its file (``pseudonymisation.keys``) holds a header line
``pfl-key/1 role=...`` and 64 hex digits. Hydra writes every argument of a run into its
configuration dump under ``pfl-logs/`` and messages echo paths, so a key given by value on the
command line (``network_key=<hex>``, or the quoted file) would reach the disk in clear. The
commands therefore refuse any argument in which :func:`looks_like_key_material` finds:

- the key file's header (``pfl-key/<n> role=``);
- 64 or more hex digits in a row (the file's second line, or any 32-byte key written in hex);
- base32 of 32 bytes or more: 52 or more characters of ``A-Z2-7`` (or ``a-z2-7``) with at
  least two digits;
- base64 (standard or URL-safe) of 32 bytes or more: 43 or more characters of the alphabet
  whose letters and digits look random. Words, camel-case names and dates change character
  class (upper, lower, digit) rarely and come in runs of four or more of one class; random
  base64 changes class on most characters. A run is key-like when under 55 % of its letters
  and digits lie in such runs, or when 45 % or more of its neighbouring pairs change class.
  On random 32-byte keys the two miss about 2 in 1,000 (hex and the header are always caught);
  on long real paths (``/data/NIVEL/Zorgregistraties2023/EersteLijn/...``) at least 64 % lie
  in runs and at most 35 % change class.

The check never returns or reports the material it found: callers name the setting only.
"""

from __future__ import annotations

import itertools
import re

__all__ = ["looks_like_key_material"]

_HEADER = re.compile(r"pfl-key/\d+\s+role\s*=", re.IGNORECASE)
_HEX = re.compile(r"[0-9a-fA-F]{64,}")
_BASE32 = re.compile(r"[A-Z2-7]{52,}|[a-z2-7]{52,}")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{43,}")
_MIN_BASE64_ALNUM = 36  # 43 characters encode 32 bytes; some are + / _ - (1 in 32 each)
_RUN = 4  # a run of one character class this long reads as a word or a number
_MAX_IN_RUNS = 0.55
_MIN_CHANGES = 0.45


def _char_class(char: str) -> str:
    if char.isdigit():
        return "digit"
    return "upper" if char.isupper() else "lower"


def _random_looking(run: str) -> bool:
    classes = [_char_class(c) for c in run if c.isascii() and c.isalnum()]
    if len(classes) < _MIN_BASE64_ALNUM or len(set(classes)) < 2:
        return False
    lengths = [len(list(group)) for _, group in itertools.groupby(classes)]
    in_runs = sum(n for n in lengths if n >= _RUN)
    changes = sum(a != b for a, b in itertools.pairwise(classes))
    return in_runs / len(classes) < _MAX_IN_RUNS or changes / (len(classes) - 1) >= _MIN_CHANGES


def looks_like_key_material(text: str) -> bool:
    """Whether ``text`` holds a key file's header, or a key of 32 bytes or more in hex or base32/64.

    Args:
        text: one command-line argument, setting value or path.
    """
    if _HEADER.search(text) or _HEX.search(text):
        return True
    if any(sum(c.isdigit() for c in m.group()) >= 2 for m in _BASE32.finditer(text)):
        return True
    return any(_random_looking(m.group()) for m in _BASE64.finditer(text))
