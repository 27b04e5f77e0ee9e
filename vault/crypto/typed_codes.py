"""Codes people read aloud and type: recovery codes, invitations, a child's handover.

Crockford's base32 alphabet (no I, L, O or U), shown in groups of four; typed with any
spacing or dashes, in either case, with I, L and O read as 1, 1 and 0. Only a keyed hash
(HMAC-SHA-256 under the app secret, with a label per use so a code of one kind can
never stand for another) is kept: a stolen database cannot be searched for them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

__all__ = ["ALPHABET", "code_hash", "new_code", "normalise", "readable", "well_formed"]

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TYPO = str.maketrans({"I": "1", "L": "1", "O": "0"})
_NOT_CODE = re.compile(r"[\s-]+")


def new_code(chars: int) -> str:
    """A random code of `chars` characters (5 bits each)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(chars))


def normalise(code: str) -> str:
    """`code` as typed, in the form it was made in."""
    return _NOT_CODE.sub("", code).upper().translate(_TYPO)


def well_formed(normal: str, chars: int) -> bool:
    """Whether a normalised code could be one of `chars` characters this module made."""
    return len(normal) == chars and all(ch in ALPHABET for ch in normal)


def readable(code: str) -> str:
    """ABCD-EFGH-JKMN: the code as shown."""
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))


def code_hash(secret: bytes, label: bytes, code: str) -> str:
    """The keyed hash kept of a (normalised) code, hex."""
    return hmac.new(secret, label + b"\x00" + code.encode("ascii"), hashlib.sha256).hexdigest()
