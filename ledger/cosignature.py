"""C2SP tlog-cosignature v1 with Ed25519: a witness's timestamped signature on a checkpoint.

A cosignature is a signed-note signature line whose key ID uses signature type 0x04,
``SHA-256(name || 0x0A || 0x04 || public key)[:4]``, and whose signature bytes are a
``timestamped_signature``: an 8-byte big-endian POSIX timestamp, then the 64-byte Ed25519
signature of ``"cosignature/v1\\ntime <timestamp>\\n" || checkpoint note text``.

Witness verifier key: ``<name>+<hex key id>+<base64(0x04 || public key)>`` (signed-note vkey).
Witness signer key:   ``PRIVATE+KEY+<name>+<hex key id>+<base64(0x04 || seed)>``, the same
shape as the log's signer key in ledger.note, so a key file says which kind it is.

The message does not commit to the witness's name, so one key must never serve two names
(tlog-cosignature, "Ed25519 signed message").
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field

import nacl.exceptions
import nacl.signing

from ledger.errors import KeyFormatError, NoteError
from ledger.note import check_key_name, key_id, parse_key_id, parse_note, typed_key

__all__ = [
    "COSIGNATURE_V1",
    "Cosignature",
    "CosignatureCheck",
    "WitnessKey",
    "WitnessSigner",
    "check_cosignatures",
    "cosigned_message",
]

#: The signed-note signature type of Ed25519 cosignature/v1 (tlog-cosignature, "Format").
COSIGNATURE_V1 = 0x04
_DASH = "\u2014 "
_SIG_SIZE = 8 + 64
_MAX_TIME = 2**63 - 1
def _key_id(name: str, public_key: bytes) -> int:
    return key_id(name, public_key, COSIGNATURE_V1)


def _key_of(text: str, what: str) -> bytes:
    return typed_key(text, COSIGNATURE_V1, what)


def _check_key_id(hex_id: str, name: str, public_key: bytes) -> int:
    derived = _key_id(name, public_key)
    if parse_key_id(hex_id) != derived:
        raise KeyFormatError("witness key id does not match its name and key")
    return derived


def cosigned_message(text: str, timestamp: int) -> bytes:
    """What a cosignature/v1 signs: two header lines, then the whole checkpoint text."""
    if not 0 <= timestamp <= _MAX_TIME:
        raise NoteError(f"cosignature timestamp {timestamp} is outside 0..2**63-1")
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


@dataclass(frozen=True, slots=True)
class WitnessKey:
    """A witness's Ed25519 cosignature/v1 verifier key."""

    name: str
    key_id: int
    public_key: bytes
    _key: nacl.signing.VerifyKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            key = nacl.signing.VerifyKey(self.public_key)
        except (ValueError, TypeError, nacl.exceptions.CryptoError):
            raise KeyFormatError("witness key is not an Ed25519 public key") from None
        object.__setattr__(self, "_key", key)

    @classmethod
    def parse(cls, vkey: str) -> WitnessKey:
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise KeyFormatError("witness key must be <name>+<8 hex digits>+<base64 key>")
        name, hex_id, material = parts
        check_key_name(name)
        public_key = _key_of(material, "witness key")
        return cls(name, _check_key_id(hex_id, name, public_key), public_key)

    def __str__(self) -> str:
        material = base64.b64encode(bytes([COSIGNATURE_V1]) + self.public_key).decode()
        return f"{self.name}+{self.key_id:08x}+{material}"

    def timestamp_of(self, text: str, signature: bytes) -> int | None:
        """The timestamp of a valid cosignature of `text` by this key, else None."""
        if len(signature) != _SIG_SIZE:
            return None
        timestamp = int.from_bytes(signature[:8], "big")
        if timestamp > _MAX_TIME:
            return None
        try:
            self._key.verify(cosigned_message(text, timestamp), signature[8:])
        except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
            return None
        return timestamp


@dataclass(frozen=True, slots=True)
class WitnessSigner:
    """A witness's Ed25519 key that cosigns."""

    name: str
    key_id: int
    seed: bytes

    @classmethod
    def generate(cls, name: str) -> WitnessSigner:
        check_key_name(name)
        return cls.from_seed(name, bytes(nacl.signing.SigningKey.generate()))

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> WitnessSigner:
        check_key_name(name)
        public_key = bytes(nacl.signing.SigningKey(seed).verify_key)
        return cls(name, _key_id(name, public_key), seed)

    @classmethod
    def parse(cls, skey: str) -> WitnessSigner:
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise KeyFormatError("witness signer key must be PRIVATE+KEY+<name>+<hex id>+<base64>")
        name, hex_id, material = parts[2:]
        signer = cls.from_seed(name, _key_of(material, "witness signer key"))
        _check_key_id(hex_id, name, signer.public_key)
        return signer

    @property
    def public_key(self) -> bytes:
        return bytes(nacl.signing.SigningKey(self.seed).verify_key)

    def verifier(self) -> WitnessKey:
        return WitnessKey(self.name, self.key_id, self.public_key)

    def __str__(self) -> str:
        material = base64.b64encode(bytes([COSIGNATURE_V1]) + self.seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{material}"

    def __repr__(self) -> str:  # never print the seed by accident
        return f"WitnessSigner(name={self.name!r}, key_id={self.key_id:08x})"

    def cosign(self, text: str, timestamp: int) -> str:
        """The signature line (ending in a newline) cosigning checkpoint `text` at `timestamp`."""
        signature = nacl.signing.SigningKey(self.seed).sign(
            cosigned_message(text, timestamp)).signature
        blob = self.key_id.to_bytes(4, "big") + timestamp.to_bytes(8, "big") + signature
        return f"{_DASH}{self.name} {base64.b64encode(blob).decode()}\n"


@dataclass(frozen=True, slots=True)
class Cosignature:
    witness: WitnessKey
    timestamp: int


@dataclass(frozen=True, slots=True)
class CosignatureCheck:
    """The cosignatures of a note by the expected witnesses.

    `valid` has one per witness (its latest timestamp); `forged` names the expected
    witnesses with a line that does not verify. Lines by other keys are ignored.
    """

    valid: tuple[Cosignature, ...]
    forged: tuple[str, ...]

    def meets(self, quorum: int) -> bool:
        return len(self.valid) >= quorum


def check_cosignatures(
    note: str | bytes, *, expected_witnesses: Iterable[WitnessKey],
    not_after: int | None = None,
) -> CosignatureCheck:
    """Check every cosignature line of a signed note by the expected witnesses.

    `not_after` (a POSIX time) refuses cosignatures from the future, which the spec
    lets verifiers do: a witness's clock is not a reason to trust a claim ahead of it.
    """
    parsed = parse_note(note)
    known = {(w.name, w.key_id): w for w in expected_witnesses}
    valid: dict[WitnessKey, int] = {}
    forged: list[str] = []
    for sig in parsed.signatures:
        witness = known.get((sig.name, sig.key_id))
        if witness is None:
            continue
        timestamp = witness.timestamp_of(parsed.text, sig.signature)
        if timestamp is None or (not_after is not None and timestamp > not_after):
            forged.append(str(witness))
            continue
        valid[witness] = max(timestamp, valid.get(witness, 0))
    return CosignatureCheck(
        tuple(Cosignature(w, t) for w, t in valid.items()), tuple(dict.fromkeys(forged)))
