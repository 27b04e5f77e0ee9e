"""The KEK keyring: key file and VAULT_MASTER_KEY, rotation, wrapping data keys."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from vault.crypto import (
    MASTER_KEY_FILE,
    CryptoError,
    DecryptionFailed,
    Kek,
    Keyring,
    UnknownKek,
    add_new_kek,
    data_key_ad,
    drop_kek,
    kek_id,
    load_keyring,
    new_key,
    new_master_key,
    open_sealed,
    record_ad,
    seal,
)
from vault.errors import ConfigError


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def file_keyring(key_dir: Path) -> Keyring:
    return load_keyring(key_dir, master_key=None, production=False)


def forms(key: bytes) -> list[str]:
    """Every way the key's bytes could show up in text."""
    return [b64(key), b64(key).rstrip("="), base64.urlsafe_b64encode(key).decode().rstrip("="),
            key.hex(), repr(key)]


# -- the key file --------------------------------------------------------------------------


def test_key_file_is_created_0600_in_a_0700_dir_and_reloads_equal(tmp_path: Path) -> None:
    key_dir = tmp_path / "data" / "keys"
    ring = file_keyring(key_dir)
    path = key_dir / MASTER_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    assert ring.source == "file" and ring.path == path and len(ring) == 1
    again = file_keyring(key_dir)
    assert again == ring and again.current == ring.current and again.ids() == ring.ids()
    doc = json.loads(path.read_text())
    assert doc == {"current": ring.current.id, "keys": {ring.current.id: b64(ring.current.key)}}
    assert [p.name for p in key_dir.iterdir() if p.name.endswith(".tmp")] == []


def test_production_loads_an_existing_key_file(tmp_path: Path) -> None:
    ring = file_keyring(tmp_path)
    assert load_keyring(tmp_path, master_key=None, production=True) == ring


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_key_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    file_keyring(tmp_path)
    (tmp_path / MASTER_KEY_FILE).chmod(mode)
    with pytest.raises(ConfigError, match="readable by others"):
        file_keyring(tmp_path)


def test_production_without_any_key_is_refused_and_creates_nothing(tmp_path: Path) -> None:
    key_dir = tmp_path / "keys"
    for blank in (None, "", "  "):
        with pytest.raises(ConfigError, match="production mode needs VAULT_MASTER_KEY or") as e:
            load_keyring(key_dir, master_key=blank, production=True)
        assert str(key_dir / MASTER_KEY_FILE) in str(e.value)
    assert not key_dir.exists()


def _write_doc(key_dir: Path, doc: object) -> None:
    path = key_dir / MASTER_KEY_FILE
    path.write_text(json.dumps(doc))
    path.chmod(0o600)


def test_a_tampered_key_file_is_refused_clearly(tmp_path: Path) -> None:
    ring = file_keyring(tmp_path)
    kid, key = ring.current.id, b64(ring.current.key)
    other = new_key()
    cases: list[tuple[object, str]] = [
        ({"current": kid, "keys": {kid: b64(other)}}, "does not match its id"),
        ({"current": "kek_0000000000000000", "keys": {kid: key}}, '"current" must name'),
        ({"current": kid, "keys": {kid: b64(other[:16])}}, "not 32 bytes"),
        ({"current": kid, "keys": {}}, "non-empty"),
        ({"current": kid, "keys": {kid: key}, "extra": 1}, "exactly the fields"),
        ([kid], "exactly the fields"),
    ]
    for doc, message in cases:
        _write_doc(tmp_path, doc)
        with pytest.raises(ConfigError, match=message) as e:
            file_keyring(tmp_path)
        assert all(f not in str(e.value) for f in forms(other) + forms(ring.current.key))
    (tmp_path / MASTER_KEY_FILE).write_text("{not json")
    with pytest.raises(ConfigError, match="not JSON"):
        file_keyring(tmp_path)


def test_concurrent_first_runs_agree_on_one_key(tmp_path: Path) -> None:
    rings: list[Keyring] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            rings.append(file_keyring(tmp_path / "keys"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(rings) == 8
    assert all(r == rings[0] for r in rings)


# -- VAULT_MASTER_KEY ----------------------------------------------------------------------


def test_master_key_single_and_list_first_is_current(tmp_path: Path) -> None:
    k1, k2, k3 = new_key(), new_key(), new_key()
    one = load_keyring(tmp_path, master_key=b64(k1), production=True)
    assert one.source == "env" and one.current == Kek(kek_id(k1), k1) and one.ids() == [kek_id(k1)]
    many = load_keyring(tmp_path, master_key=f" {b64(k2)} ,{b64(k1)},{b64(k3)}\n",
                        production=True)
    assert many.current.key == k2
    assert many.ids() == [kek_id(k2), kek_id(k1), kek_id(k3)]
    assert many.get(kek_id(k1)).key == k1
    assert not (tmp_path / MASTER_KEY_FILE).exists()  # env keys never touch the disk


def test_master_key_wins_over_a_key_file(tmp_path: Path) -> None:
    file_ring = file_keyring(tmp_path)
    k = new_key()
    ring = load_keyring(tmp_path, master_key=b64(k), production=False)
    assert ring.ids() == [kek_id(k)] and file_ring.current.id not in ring


def test_kek_ids_are_stable_and_derived_from_the_key() -> None:
    key = bytes(range(32))
    want = "kek_" + hashlib.sha256(b"vault-kek-id" + key).digest()[:8].hex()
    assert kek_id(key) == want and len(want) == 20
    ring = load_keyring(Path("/nonexistent"), master_key=b64(key), production=True)
    assert ring.current.id == want
    assert Kek.from_key(key) == Kek(want, key)
    assert kek_id(new_key()) != kek_id(new_key())


def test_master_key_accepts_url_safe_and_unpadded_base64() -> None:
    key = b"\xfb\xff" * 16  # encodes with "+" and "/" (standard) or "-" and "_" (URL-safe)
    for text in (b64(key), b64(key).rstrip("="), base64.urlsafe_b64encode(key).decode()):
        ring = load_keyring(Path("/nonexistent"), master_key=text, production=True)
        assert ring.current.key == key


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda good: "not base64 at all!", r"key 1 of 1 is not valid base64"),
        (lambda good: f"{good},@@@@", r"key 2 of 2 is not valid base64"),
        (lambda good: b64(b"\x00" * 16), r"key 1 of 1 decodes to 16 bytes, not 32"),
        (lambda good: f"{good},{b64(bytes(33))}", r"key 2 of 2 decodes to 33 bytes, not 32"),
        (lambda good: f"{good},", r"key 2 of 2 is empty"),
        (lambda good: f",{good}", r"key 1 of 2 is empty"),
        (lambda good: f"{good},{good}", r"key 2 of 2 repeats an earlier key"),
    ],
)
def test_a_malformed_master_key_is_a_clear_config_error(
    make: Callable[[str], str], message: str
) -> None:
    good_key = new_key()
    text = make(b64(good_key))
    with pytest.raises(ConfigError, match=message) as e:
        load_keyring(Path("/nonexistent"), master_key=text, production=True)
    assert "VAULT_MASTER_KEY" in str(e.value)
    assert all(f not in str(e.value) for f in forms(good_key))


def test_env_managed_keys_cannot_be_rotated_or_dropped_through_files(tmp_path: Path) -> None:
    env = f"{new_master_key()},{new_master_key()}"
    with pytest.raises(ConfigError, match=r"VAULT_MASTER_KEY=<new>,<old>"):
        add_new_kek(tmp_path, master_key=env)
    with pytest.raises(ConfigError, match=r"VAULT_MASTER_KEY=<new>,<old>"):
        drop_kek(tmp_path, "kek_0000000000000000", master_key=env)
    with pytest.raises(ConfigError, match=r"no master key file .*VAULT_MASTER_KEY=<new>,<old>"):
        add_new_kek(tmp_path)
    assert not (tmp_path / MASTER_KEY_FILE).exists()


def test_new_master_key_is_a_usable_value() -> None:
    text = new_master_key()
    assert len(base64.b64decode(text, validate=True)) == 32
    assert load_keyring(Path("/nonexistent"), master_key=text, production=True).current.id


# -- rotation ------------------------------------------------------------------------------


def test_add_new_kek_keeps_old_keys_and_makes_the_new_one_current(tmp_path: Path) -> None:
    first = file_keyring(tmp_path)
    second = add_new_kek(tmp_path)
    third = add_new_kek(tmp_path)
    assert third.current not in (first.current, second.current)
    # Current first, then the older keys newest first.
    assert third.ids() == [third.current.id, second.current.id, first.current.id]
    assert third.get(first.current.id) == first.current
    assert file_keyring(tmp_path) == third
    assert stat.S_IMODE((tmp_path / MASTER_KEY_FILE).stat().st_mode) == 0o600


def test_add_new_kek_writes_a_temp_file_and_renames_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file_keyring(tmp_path)
    real_replace = os.replace
    seen: list[tuple[Path, Path, int, dict[str, object]]] = []

    def spy(src: str | Path, dst: str | Path) -> None:
        src, dst = Path(src), Path(dst)
        # At the moment of the rename the new content is complete, on disk, 0600.
        seen.append((src, dst, stat.S_IMODE(src.stat().st_mode), json.loads(src.read_text())))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)  # keyfiles calls os.replace
    ring = add_new_kek(tmp_path)
    assert len(seen) == 1
    src, dst, mode, doc = seen[0]
    assert dst == tmp_path / MASTER_KEY_FILE and src.parent == tmp_path and src != dst
    assert mode == 0o600 and doc["current"] == ring.current.id
    assert not src.exists()


def test_a_rotation_killed_before_the_rename_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = file_keyring(tmp_path)
    text_before = (tmp_path / MASTER_KEY_FILE).read_text()

    def crash(src: str | Path, dst: str | Path) -> None:
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        add_new_kek(tmp_path)
    monkeypatch.undo()
    assert (tmp_path / MASTER_KEY_FILE).read_text() == text_before
    assert file_keyring(tmp_path) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_drop_kek_refuses_the_current_one_and_drops_old_ones(tmp_path: Path) -> None:
    old = file_keyring(tmp_path).current
    ring = add_new_kek(tmp_path)
    with pytest.raises(ConfigError, match="current key-encryption key and cannot be dropped"):
        drop_kek(tmp_path, ring.current.id)
    with pytest.raises(UnknownKek):
        drop_kek(tmp_path, "kek_ffffffffffffffff")
    after = drop_kek(tmp_path, old.id)
    assert after.ids() == [ring.current.id] and old.id not in after
    assert file_keyring(tmp_path) == after


def test_drop_kek_of_a_middle_key_keeps_the_current_one(tmp_path: Path) -> None:
    a = file_keyring(tmp_path).current
    b = add_new_kek(tmp_path).current
    c = add_new_kek(tmp_path).current
    after = drop_kek(tmp_path, b.id)
    assert after.current == c and after.ids() == [c.id, a.id]
    assert json.loads((tmp_path / MASTER_KEY_FILE).read_text())["current"] == c.id


# -- wrapping data keys ----------------------------------------------------------------------


def test_wrap_unwrap_round_trip_bound_to_citizen_and_kek(tmp_path: Path) -> None:
    ring = file_keyring(tmp_path)
    dk = new_key()
    kid, wrapped = ring.wrap(dk, citizen_id="cit_1")
    assert kid == ring.current.id
    assert ring.unwrap(kid, wrapped, citizen_id="cit_1") == dk
    ad = data_key_ad(citizen_id="cit_1", kek_id=kid)
    assert open_sealed(ring.current.key, wrapped, ad=ad) == dk  # the documented recipe
    with pytest.raises(DecryptionFailed):
        ring.unwrap(kid, wrapped, citizen_id="cit_2")
    with pytest.raises(UnknownKek, match="kek_0000000000000000") as e:
        ring.unwrap("kek_0000000000000000", wrapped, citizen_id="cit_1")
    assert isinstance(e.value, CryptoError) and e.value.kek_id == "kek_0000000000000000"
    with pytest.raises(CryptoError, match="32 bytes"):
        ring.wrap(dk[:16], citizen_id="cit_1")


def test_unwrap_under_the_wrong_known_kek_fails(tmp_path: Path) -> None:
    k1, k2 = new_key(), new_key()
    ring = load_keyring(tmp_path, master_key=f"{b64(k1)},{b64(k2)}", production=True)
    kid, wrapped = ring.wrap(new_key(), citizen_id="c")
    with pytest.raises(DecryptionFailed):
        ring.unwrap(kek_id(k2), wrapped, citizen_id="c")
    # A data key wrapped with a data-key AD naming another KEK does not open either.
    forged = seal(k1, new_key(), ad=data_key_ad(citizen_id="c", kek_id=kek_id(k2)))
    with pytest.raises(DecryptionFailed):
        ring.unwrap(kid, forged, citizen_id="c")


def test_after_rotation_records_still_open_and_the_old_kek_opens_nothing_new(
    tmp_path: Path,
) -> None:
    ring = file_keyring(tmp_path)
    old = ring.current
    citizens = {f"cit_{i}": new_key() for i in range(5)}
    wrapped = {c: ring.wrap(dk, citizen_id=c) for c, dk in citizens.items()}
    records = {c: seal(dk, f"value of {c}".encode(),
                       ad=record_ad(citizen_id=c, record_id="r", category="contact.email",
                                    version=1))
               for c, dk in citizens.items()}

    ring = add_new_kek(tmp_path)
    new = ring.current
    rewrapped = {}
    for c, (kid, blob) in wrapped.items():
        assert kid == old.id
        rewrapped[c] = ring.wrap(ring.unwrap(kid, blob, citizen_id=c), citizen_id=c)
    ring = drop_kek(tmp_path, old.id)

    for c, (kid, blob) in rewrapped.items():
        assert kid == new.id
        dk = ring.unwrap(kid, blob, citizen_id=c)
        ad = record_ad(citizen_id=c, record_id="r", category="contact.email", version=1)
        assert open_sealed(dk, records[c], ad=ad) == f"value of {c}".encode()
        for ad in (data_key_ad(citizen_id=c, kek_id=new.id),
                   data_key_ad(citizen_id=c, kek_id=old.id)):
            with pytest.raises(DecryptionFailed):
                open_sealed(old.key, blob, ad=ad)
        with pytest.raises(UnknownKek):
            ring.unwrap(old.id, blob, citizen_id=c)


# -- no key material in text ---------------------------------------------------------------


def test_repr_and_str_never_show_key_material(tmp_path: Path) -> None:
    file_keyring(tmp_path)
    ring = add_new_kek(tmp_path)
    env_ring = load_keyring(tmp_path, master_key=f"{new_master_key()},{new_master_key()}",
                            production=True)
    for r in (ring, env_ring):
        texts = [repr(r), str(r), f"{r}", repr(r.current), str(r.current),
                 repr(r.get(r.ids()[1])), str([r.current])]
        secrets = [f for kid in r.ids() for f in forms(r.get(kid).key)]
        assert all(s not in t for s in secrets for t in texts)
        assert r.current.id in repr(r) and r.current.id in repr(r.current)


def test_kek_refuses_a_key_of_the_wrong_size() -> None:
    with pytest.raises(CryptoError, match="32 bytes"):
        Kek("kek_x", b"\x00" * 16)
    with pytest.raises(ConfigError, match="at least one"):
        Keyring([], source="env")
