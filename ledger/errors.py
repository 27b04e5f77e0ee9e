"""Errors raised by the ledger package.

LedgerError
├── EncodingError        an entry or body that canonical JSON (RFC 8785) cannot hold
├── ProofError           an inclusion or consistency proof that does not verify
│   └── RootMismatch     the proof is well formed but leads to another root
├── NoteError            a signed note or checkpoint that is malformed or not signed
│   └── SignatureError   a signature by the expected key that does not verify
├── KeyFormatError       a signer or verifier key string that cannot be parsed
├── RangeError           an index, size or range outside the tree
├── StoreError           the store cannot append or read (corrupt head, lost lock)
└── LogInvalid           a whole-log check failed at one entry (index + reason)
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error raised by the ledger package."""


class EncodingError(LedgerError):
    """The value cannot be encoded as, or is not, canonical entry JSON."""


class ProofError(LedgerError):
    """An inclusion or consistency proof does not verify."""


class RootMismatch(ProofError):
    """A proof is well formed but computes a root other than the expected one."""

    def __init__(self, expected: bytes, computed: bytes) -> None:
        self.expected = expected
        self.computed = computed
        super().__init__(f"root mismatch: expected {expected.hex()}, computed {computed.hex()}")


class NoteError(LedgerError):
    """A signed note or checkpoint is malformed or carries no verified signature."""


class SignatureError(NoteError):
    """A signature by a known key does not verify."""


class KeyFormatError(LedgerError):
    """A C2SP signer or verifier key string is malformed."""


class RangeError(LedgerError):
    """An index, tree size or page asks for something outside the tree."""


class StoreError(LedgerError):
    """The store cannot append or read consistently."""


class LogInvalid(LedgerError):
    """A whole-log check failed: `index` names the first entry that failed."""

    def __init__(self, index: int, reason: str) -> None:
        self.index = index
        self.reason = reason
        super().__init__(f"entry {index}: {reason}")
