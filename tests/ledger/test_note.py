"""C2SP signed notes and key strings: the Go known answer, mangled keys, several
signers, bad signatures, malformed notes."""

from __future__ import annotations

import base64
import hashlib
import string

import pytest

from ledger.errors import KeyFormatError, NoteError, SignatureError
from ledger.note import MAX_SIGNATURES, Signer, Verifier, open_note, parse_note, sign_note

# Known answer from Go's golang.org/x/mod/sumdb/note tests.
SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
TEXT = ("If you think cryptography is the answer to your problem,\n"
        "then you don't know what your problem is.\n")
SIG = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
NOTE = TEXT + "\n\u2014 PeterNeumann " + SIG + "\n"
DASH = "\u2014 "


def key_id(name: str, public_key: bytes) -> int:
    """C2SP signed-note key ID, computed here independently of ledger.note."""
    return int.from_bytes(hashlib.sha256(name.encode() + b"\n\x01" + public_key).digest()[:4])


def sig_line(name: str, kid: int, sig: bytes) -> str:
    return f"{DASH}{name} {base64.b64encode(kid.to_bytes(4, 'big') + sig).decode()}\n"


# --- the known answer ------------------------------------------------------------------


def test_go_vector() -> None:
    signer, verifier = Signer.parse(SKEY), Verifier.parse(VKEY)
    assert str(signer) == SKEY and str(verifier) == VKEY
    assert signer.verifier() == verifier
    assert verifier.key_id == 0xC74F20A3 == key_id("PeterNeumann", verifier.public_key)
    assert sign_note(TEXT, [signer]) == NOTE
    for note in (NOTE, NOTE.encode()):
        opened = open_note(note, expected_verifiers=[verifier])
        assert opened.text == TEXT
        assert opened.verified_by == (verifier,)
        assert [(s.name, s.key_id) for s in opened.signatures] == [("PeterNeumann", 0xC74F20A3)]
    assert verifier.verify(TEXT.encode(), base64.b64decode(SIG)[4:])
    assert "AYEKFALV" not in repr(signer)  # the seed never shows in a repr


@pytest.mark.parametrize("tampered", [
    NOTE.replace("cryptography", "cryptographY"),
    NOTE.replace("problem,\n", "problem.\n"),
    "x" + NOTE,
    NOTE.replace("is.\n\n", "is.\n\n\n"),  # an extra blank line is part of the text
])
def test_go_vector_tampered_text(tampered: str) -> None:
    with pytest.raises(SignatureError):
        open_note(tampered, expected_verifiers=[Verifier.parse(VKEY)])


# --- key strings -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["example.org/ledger", "a", "\u00fcnic\u00f8de/log", "x" * 200])
def test_key_round_trip(name: str) -> None:
    signer = Signer.generate(name)
    verifier = signer.verifier()
    assert Signer.parse(str(signer)) == signer
    assert Verifier.parse(str(verifier)) == verifier
    assert Verifier.parse(str(verifier) + "\n") == verifier  # as read from a file
    assert verifier.key_id == key_id(name, verifier.public_key) == signer.key_id
    assert str(verifier).startswith(f"{name}+{signer.key_id:08x}+")
    assert sign_note("hi\n", [signer]).startswith("hi\n\n" + DASH + name + " ")


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\there", "new\nline"])
def test_bad_names(name: str) -> None:
    with pytest.raises(KeyFormatError):
        Signer.generate(name)


def _hex_case_only(mangled: str, original: str, hex_field: int) -> bool:
    """Whether the only change is the case of a key-ID hex digit (Go accepts that too)."""
    m, o = mangled.split("+"), original.split("+")
    pairs = enumerate(zip(m, o, strict=True)) if len(m) == len(o) else None
    return pairs is not None and all(
        a == b or (i == hex_field and a.lower() == b) for i, (a, b) in pairs)


REPLACEMENTS = string.printable + "\x00\x7f\u00e9\u2014"


@pytest.mark.parametrize("key", [VKEY, SKEY], ids=["verifier", "signer"])
def test_mangled_keys_rejected(key: str) -> None:
    parse = Verifier.parse if key == VKEY else Signer.parse
    hex_field = 1 if key == VKEY else 3
    good = parse(key)
    mangled = {key[i:j] for i in range(len(key) + 1) for j in range(i, len(key) + 1)}
    mangled |= {key[:i] + c + key[i + 1:] for i in range(len(key)) for c in REPLACEMENTS}
    mangled |= {key[:i] + key[i + 1:] + key[i] for i in range(len(key))}
    mangled.discard(key)
    accepted = []
    for k in sorted(mangled):
        try:
            got = parse(k)
        except KeyFormatError:
            continue
        if k.strip() == key or _hex_case_only(k, key, hex_field):
            assert got == good  # the same key, written differently
            continue
        accepted.append(k)
    assert accepted == []
    assert len(mangled) > 5000


# --- several signers ---------------------------------------------------------------------


def test_several_signatures_unknown_ones_ignored() -> None:
    a, b, c = Signer.generate("a.example"), Signer.generate("b.example"), Signer.generate("c")
    same_name = Signer.generate("a.example")  # right name, other key (and key id)
    assert same_name.key_id != a.key_id
    text = "checkpoint body\n"
    note = sign_note(text, [b, same_name, a])
    assert open_note(note, expected_verifiers=[a.verifier()]).verified_by == (a.verifier(),)
    both = open_note(note, expected_verifiers=[c.verifier(), a.verifier(), b.verifier()])
    assert set(both.verified_by) == {a.verifier(), b.verifier()}
    with pytest.raises(NoteError) as info:
        open_note(note, expected_verifiers=[c.verifier()])
    assert type(info.value) is NoteError  # not signed by a known key is not a bad signature

    junk = bytes(64)
    forged = [
        sig_line("a.example", a.key_id ^ 1, junk),  # right name, other key id
        sig_line("other", a.key_id, junk),  # right key id, other name
        sig_line("a.example", same_name.key_id, a.sign(text.encode())),
    ]
    good = sig_line("a.example", a.key_id, a.sign(text.encode()))
    opened = open_note(text + "\n" + "".join(forged) + good, expected_verifiers=[a.verifier()])
    assert opened.verified_by == (a.verifier(),) and len(opened.signatures) == 4
    with pytest.raises(NoteError) as info:
        open_note(text + "\n" + "".join(forged), expected_verifiers=[a.verifier()])
    assert type(info.value) is NoteError


def test_bad_signature_by_expected_key() -> None:
    a, b = Signer.generate("a.example"), Signer.generate("b.example")
    text = "body\n"
    sig = bytearray(a.sign(text.encode()))
    sig[10] ^= 0x01
    note = text + "\n" + sig_line("a.example", a.key_id, bytes(sig)) + \
        sig_line("b.example", b.key_id, b.sign(text.encode()))
    for expected in ([a.verifier()], [b.verifier(), a.verifier()]):
        with pytest.raises(SignatureError):
            open_note(note, expected_verifiers=expected)
    assert open_note(note, expected_verifiers=[b.verifier()]).verified_by == (b.verifier(),)
    # A signature of the right key over other text, and one of the wrong length.
    for bad in (a.sign(b"other\n"), a.sign(text.encode())[:63], a.sign(text.encode()) + b"\0"):
        with pytest.raises(SignatureError):
            open_note(text + "\n" + sig_line("a.example", a.key_id, bad),
                      expected_verifiers=[a.verifier()])


# --- malformed notes ---------------------------------------------------------------------

_SIGNATURE = NOTE[len(TEXT) + 1:]
MALFORMED: dict[str, str | bytes] = {
    "no-blank-line": TEXT + _SIGNATURE,
    "no-signatures": TEXT + "\n",
    "missing-final-newline": NOTE[:-1],
    "tab-in-text": "If you\tthink\n\n" + _SIGNATURE,
    "cr-in-text": TEXT.replace("\n", "\r\n") + "\n" + _SIGNATURE,
    "nul-in-text": "a\x00b\n\n" + _SIGNATURE,
    "escape-in-text": "a\x1bb\n\n" + _SIGNATURE,
    "cr-in-signature": NOTE[:-1] + "\r\n",
    "non-utf8": NOTE.encode().replace(b"cryptography", b"crypt\xffgraphy"),
    "truncated-utf8": NOTE.encode().replace(b"\xe2\x80\x94", b"\xe2\x80"),
    "bad-base64": TEXT + "\n" + DASH + "PeterNeumann !!!!" + SIG[4:] + "\n",
    "base64-with-space": TEXT + "\n" + DASH + "PeterNeumann " + SIG[:8] + " " + SIG[8:] + "\n",
    "signature-too-short": TEXT + "\n" + DASH + "PeterNeumann AAAAAA==\n",
    "no-dash": TEXT + "\n" + "-- PeterNeumann " + SIG + "\n",
    "dash-no-space": TEXT + "\n\u2014PeterNeumann " + SIG + "\n",
    "no-name": TEXT + "\n" + DASH + " " + SIG + "\n",
    "no-signature": TEXT + "\n" + DASH + "PeterNeumann\n",
    "extra-field": TEXT + "\n" + DASH + "PeterNeumann " + SIG + " x\n",
    "blank-line-among-signatures": NOTE + "\n" + _SIGNATURE,
    "empty": "",
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_notes(name: str) -> None:
    with pytest.raises(NoteError):
        open_note(MALFORMED[name], expected_verifiers=[Verifier.parse(VKEY)])


def test_signature_count_limit() -> None:
    a = Signer.generate("a.example")
    text = "body\n"
    good = sig_line("a.example", a.key_id, a.sign(text.encode()))
    others = [sig_line(f"n{i}", i, bytes(64)) for i in range(MAX_SIGNATURES)]
    ok = text + "\n" + good + "".join(others[: MAX_SIGNATURES - 1])
    assert len(parse_note(ok).signatures) == MAX_SIGNATURES
    assert open_note(ok, expected_verifiers=[a.verifier()]).verified_by == (a.verifier(),)
    with pytest.raises(NoteError):
        open_note(text + "\n" + good + "".join(others), expected_verifiers=[a.verifier()])


@pytest.mark.parametrize("text", ["no newline", "tab\there\n", "cr\r\n", ""])
def test_sign_note_refuses_bad_text(text: str) -> None:
    with pytest.raises(NoteError):
        sign_note(text, [Signer.parse(SKEY)])


def test_sign_note_needs_a_signer() -> None:
    with pytest.raises(NoteError):
        sign_note(TEXT, [])


def test_signature_base64_must_be_canonical() -> None:
    """A signature whose last base64 character has spare bits set decodes to the same
    bytes, but one note has one spelling: it is refused, not silently accepted."""
    signer = Signer.generate("example.com/log")
    note = sign_note("example.com/log\n1\nAAAA\n", [signer])
    text, _, sig_line = note.rstrip("\n").rpartition("\n")
    prefix, _, b64 = sig_line.rpartition(" ")
    # 4 + 64 = 68 bytes: one '=' pad, so the last data character carries 2 spare bits.
    assert b64.endswith("=") and not b64.endswith("==")
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/"
    last = alphabet.index(b64[-2])
    respelt = b64[:-2] + alphabet[last ^ 1] + "="
    assert respelt != b64 and base64.b64decode(respelt) == base64.b64decode(b64)
    parse_note(note)  # the canonical spelling is fine
    with pytest.raises(NoteError, match="canonical"):
        parse_note(f"{text}\n{prefix} {respelt}\n")
