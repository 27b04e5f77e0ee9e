"""C2SP tlog-checkpoints: exact text, strict parsing, origin checks, and rejection of
every bit flip of a signed checkpoint."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint, sign_checkpoint
from ledger.errors import LedgerError, NoteError, SignatureError
from ledger.note import Signer, parse_note

ORIGIN = "example.org/ledger"
ROOT = bytes(range(32))
ROOT_B64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
URLSAFE_B64 = base64.urlsafe_b64encode(b"\xff" * 32).decode()
SIGNER = Signer.generate(ORIGIN)
VERIFIER = SIGNER.verifier()


def test_text_is_exact() -> None:
    cp = Checkpoint(ORIGIN, 42, ROOT)
    assert cp.text() == f"{ORIGIN}\n42\n{ROOT_B64}\n"
    assert Checkpoint(ORIGIN, 0, ROOT).text() == f"{ORIGIN}\n0\n{ROOT_B64}\n"
    assert parse_checkpoint(cp.text()) == cp


origins = st.text(st.characters(codec="utf-8", blacklist_characters="\n",
                                blacklist_categories=["Cc"]), min_size=1, max_size=30)


@settings(max_examples=150, deadline=None)
@given(origin=origins, size=st.integers(0, 2**64 - 1), root=st.binary(min_size=32, max_size=32))
def test_parse_round_trip(origin: str, size: int, root: bytes) -> None:
    cp = Checkpoint(origin, size, root)
    assert parse_checkpoint(cp.text()) == cp


BAD_SIZES = ["01", "00", "-1", "+1", "1.0", "0x1", " 1", "1 ", "", "1e3", "\u0661",
             "\uff11", "1_000",
             # C2SP tlog-checkpoint: the tree size is a uint64.
             str(2**64), "99999999999999999999"]


@pytest.mark.parametrize("size", BAD_SIZES)
def test_bad_sizes(size: str) -> None:
    with pytest.raises(NoteError):
        parse_checkpoint(f"{ORIGIN}\n{size}\n{ROOT_B64}\n")


@pytest.mark.parametrize("text", [
    f"{ORIGIN}\n1\n{base64.b64encode(ROOT[:31]).decode()}\n",
    f"{ORIGIN}\n1\n{base64.b64encode(ROOT + b'!').decode()}\n",
    f"{ORIGIN}\n1\n\n",
    f"{ORIGIN}\n1\n{ROOT_B64.rstrip('=')}\n",
    f"{ORIGIN}\n1\n{URLSAFE_B64}\n",
    f"{ORIGIN}\n1\n{ROOT_B64} \n",
    f"\n1\n{ROOT_B64}\n",
    f"{ORIGIN}\n1\n{ROOT_B64}",
    f"{ORIGIN}\n1\n",
    f"{ORIGIN}\n{ROOT_B64}\n",
    f"{ORIGIN}\n1\n{ROOT_B64}\n\n",
    "",
], ids=["root-31", "root-33", "root-empty", "root-unpadded", "root-urlsafe", "root-space",
        "empty-origin", "no-final-newline", "no-root", "no-size", "empty-extension", "empty"])
def test_bad_bodies(text: str) -> None:
    with pytest.raises(NoteError):
        parse_checkpoint(text)


def test_sign_and_open() -> None:
    cp = Checkpoint(ORIGIN, 7, ROOT)
    note = sign_checkpoint(cp, SIGNER)
    assert note.startswith(cp.text() + "\n\u2014 " + ORIGIN + " ")
    assert open_checkpoint(note, expected_verifier=VERIFIER) == cp
    assert open_checkpoint(note.encode(), expected_verifier=VERIFIER,
                           expected_origin=ORIGIN) == cp
    with pytest.raises(NoteError):
        open_checkpoint(note, expected_verifier=VERIFIER, expected_origin="other.org/ledger")
    other = Signer.generate(ORIGIN)  # same name, other key
    with pytest.raises(NoteError) as info:
        open_checkpoint(note, expected_verifier=other.verifier())
    assert type(info.value) is NoteError


def test_origin_must_be_the_key_name() -> None:
    cp = Checkpoint("other.org/ledger", 7, ROOT)
    note = sign_checkpoint(cp, SIGNER)  # signed by the right key, wrong origin line
    with pytest.raises(NoteError):
        open_checkpoint(note, expected_verifier=VERIFIER)
    with pytest.raises(NoteError):
        open_checkpoint(note, expected_verifier=VERIFIER, expected_origin=ORIGIN)


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def test_every_signature_bit_flip_rejected() -> None:
    cp = Checkpoint(ORIGIN, 123456, ROOT)
    note = sign_checkpoint(cp, SIGNER)
    text, line = note.split("\n\n")
    name, blob_b64 = line.rstrip("\n").split(" ")[1:]
    blob = base64.b64decode(blob_b64)
    assert len(blob) == 4 + 64
    for bit in range(8 * len(blob)):
        bad = base64.b64encode(_flip(blob, bit)).decode()
        with pytest.raises(NoteError) as info:
            open_checkpoint(f"{text}\n\n\u2014 {name} {bad}\n", expected_verifier=VERIFIER)
        # A flip in the key ID makes the signature unknown; in the signature, bad.
        assert isinstance(info.value, SignatureError) == (bit >= 32)


def test_every_bit_flip_of_the_note_rejected() -> None:
    cp = Checkpoint(ORIGIN, 123456, ROOT)
    note = sign_checkpoint(cp, SIGNER).encode()
    original = parse_note(note)
    for bit in range(8 * len(note)):
        bad = _flip(note, bit)
        try:
            opened = open_checkpoint(bad, expected_verifier=VERIFIER)
        except LedgerError:
            continue
        # Base64 may end in bits that decoding drops: such a flip leaves the decoded note
        # (text and signature bytes) unchanged, so it says nothing new.
        assert parse_note(bad) == original and opened == cp, (bit, bad)


@settings(max_examples=100, deadline=None)
@given(size=st.integers(0, 2**64 - 1), root=st.binary(min_size=32, max_size=32),
       data=st.data())
def test_body_bit_flips_rejected(size: int, root: bytes, data: st.DataObject) -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, size, root), SIGNER).encode()
    text_len = len(Checkpoint(ORIGIN, size, root).text().encode())
    bit = data.draw(st.integers(0, 8 * text_len - 1))
    with pytest.raises(NoteError):
        open_checkpoint(_flip(note, bit), expected_verifier=VERIFIER)
