"""C2SP tlog-cosignature v1 (Ed25519): known answers derived from the spec's example, key
strings, and cosignatures that must not count (forged, flipped, other keys, the future)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.cosignature import (
    WitnessKey,
    WitnessSigner,
    check_cosignatures,
    cosigned_message,
)
from ledger.errors import KeyFormatError, NoteError
from ledger.note import Signer, Verifier, open_note, parse_note

VECTORS = json.loads((Path(__file__).parent / "vectors" / "cosignature.json").read_text())
TEXT = VECTORS["checkpoint_text"]
DERIVED = VECTORS["derived"]


def _blob(line: str) -> bytes:
    return base64.b64decode(line.rstrip("\n").rsplit(" ", 1)[1])


# --- known answers -----------------------------------------------------------------------


def test_signed_message_is_the_spec_example() -> None:
    assert cosigned_message(TEXT, 1679315147).decode() == VECTORS["signed_message"]


def test_spec_example_line_layout() -> None:
    # The spec's witness line: 4-byte key id, 8-byte big-endian timestamp, 64-byte signature,
    # and the timestamp is the one in the spec's example signed message.
    blob = _blob(VECTORS["spec_example"]["line"])
    assert len(blob) == 4 + 8 + 64
    assert blob[:4].hex() == VECTORS["spec_example"]["key_id"]
    assert int.from_bytes(blob[4:12], "big") == VECTORS["spec_example"]["timestamp"]


def test_derived_vector() -> None:
    seed = bytes.fromhex(DERIVED["seed_hex"])
    signer = WitnessSigner.from_seed(DERIVED["name"], seed)
    assert str(signer) == DERIVED["signer_key"]
    assert str(signer.verifier()) == DERIVED["verifier_key"]
    assert WitnessSigner.parse(DERIVED["signer_key"]).seed == seed
    assert WitnessKey.parse(DERIVED["verifier_key"]) == signer.verifier()
    assert signer.cosign(TEXT, DERIVED["timestamp"]) == DERIVED["line"]


def test_derived_vector_by_another_implementation() -> None:
    # The same bytes from the spec's formulas with pyca/cryptography, not ledger.cosignature.
    seed = bytes.fromhex(DERIVED["seed_hex"])
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public = private.public_key().public_bytes_raw()
    name = DERIVED["name"]
    key_id = hashlib.sha256(name.encode() + b"\n\x04" + public).digest()[:4]
    ts = DERIVED["timestamp"]
    signature = private.sign(f"cosignature/v1\ntime {ts}\n".encode() + TEXT.encode())
    blob = base64.b64encode(key_id + ts.to_bytes(8, "big") + signature).decode()
    assert f"\u2014 {name} {blob}\n" == DERIVED["line"]
    material = base64.b64encode(bytes([4]) + public).decode()
    vkey = f"{name}+{key_id.hex()}+{material}"
    assert vkey == DERIVED["verifier_key"]


# --- checking a cosigned note --------------------------------------------------------------

LOG = Signer.generate("example.org/ledger")
W1 = WitnessSigner.generate("w1.example")
W2 = WitnessSigner.generate("w2.example")


def _cosigned(*lines: str) -> tuple[str, str]:
    cp = Checkpoint(LOG.name, 7, bytes(range(32)))
    note = sign_checkpoint(cp, LOG)
    return note + "".join(lines), cp.text()


def test_valid_cosignatures_count_once_per_witness() -> None:
    text = Checkpoint(LOG.name, 7, bytes(range(32))).text()
    note, _ = _cosigned(W1.cosign(text, 100), W1.cosign(text, 200), W2.cosign(text, 150))
    check = check_cosignatures(note, expected_witnesses=[W1.verifier(), W2.verifier()])
    assert {(c.witness.name, c.timestamp) for c in check.valid} == {
        ("w1.example", 200), ("w2.example", 150)}
    assert check.forged == () and check.meets(2) and not check.meets(3)
    # The log's own signature still verifies with cosignature lines appended.
    assert open_note(note, expected_verifiers=[LOG.verifier()]).verified_by == (LOG.verifier(),)


def test_unknown_witnesses_and_log_signatures_do_not_count() -> None:
    text = Checkpoint(LOG.name, 7, bytes(range(32))).text()
    other = WitnessSigner.generate("w1.example")  # same name, other key: another key id
    note, _ = _cosigned(other.cosign(text, 100))
    check = check_cosignatures(note, expected_witnesses=[W1.verifier()])
    assert check.valid == () and check.forged == ()


def test_cosignature_of_another_checkpoint_is_forged() -> None:
    other_text = Checkpoint(LOG.name, 8, bytes(range(32))).text()
    note, _ = _cosigned(W1.cosign(other_text, 100))
    check = check_cosignatures(note, expected_witnesses=[W1.verifier()])
    assert check.valid == () and check.forged == (str(W1.verifier()),)


def test_every_flipped_bit_of_a_cosignature_is_refused() -> None:
    text = Checkpoint(LOG.name, 7, bytes(range(32))).text()
    line = W1.cosign(text, 1679315147)
    blob = _blob(line)
    for i in range(4, len(blob)):  # past the key id, which would just make it unknown
        for bit in (0, 7):
            bad = bytearray(blob)
            bad[i] ^= 1 << bit
            note, _ = _cosigned(f"\u2014 w1.example {base64.b64encode(bytes(bad)).decode()}\n")
            check = check_cosignatures(note, expected_witnesses=[W1.verifier()])
            assert check.valid == (), (i, bit)


def test_future_and_wrong_length_cosignatures_do_not_count() -> None:
    text = Checkpoint(LOG.name, 7, bytes(range(32))).text()
    note, _ = _cosigned(W1.cosign(text, 5000))
    assert check_cosignatures(note, expected_witnesses=[W1.verifier()],
                              not_after=4999).valid == ()
    short = base64.b64encode(_blob(W1.cosign(text, 1))[:-1]).decode()
    note, _ = _cosigned(f"\u2014 w1.example {short}\n")
    assert check_cosignatures(note, expected_witnesses=[W1.verifier()]).forged


def test_timestamp_range() -> None:
    with pytest.raises(NoteError):
        cosigned_message(TEXT, 2**63)
    with pytest.raises(NoteError):
        cosigned_message(TEXT, -1)


@pytest.mark.parametrize("vkey", [
    "w1.example+00000000+" + base64.b64encode(b"\x04" + bytes(32)).decode(),  # wrong id
    str(Signer.generate("w1.example").verifier()),  # a log key (type 0x01), not a witness key
    "w1.example+zzzzzzzz+BAAA",
    "no-plus-signs",
    "w 1+00000000+" + base64.b64encode(b"\x04" + bytes(32)).decode(),
], ids=["wrong-id", "log-key", "bad-id-hex", "no-plus-signs", "space-in-name"])  # fixed:
# xdist workers must collect the same ids, and the log key is made afresh in each
def test_bad_witness_keys(vkey: str) -> None:
    with pytest.raises(KeyFormatError):
        WitnessKey.parse(vkey)


def test_log_key_and_witness_key_do_not_confuse() -> None:
    with pytest.raises(KeyFormatError):
        Verifier.parse(str(W1.verifier()))
    with pytest.raises(KeyFormatError):
        WitnessSigner.parse(str(LOG))
    assert "PRIVATE" not in repr(W1)
    assert len(parse_note(_cosigned(W1.cosign(TEXT, 1))[0]).signatures) == 2
