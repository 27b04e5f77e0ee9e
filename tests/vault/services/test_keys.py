"""KEK rotation: every data key re-wrapped, resumable after a crash, old KEK retired."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from sqlmodel import select
from support.vaultworld import world

from vault.crypto import DecryptionFailed, data_key_ad, load_keyring, open_sealed
from vault.services import citizens, records
from vault.services import keys as keys_service
from vault.services.context import VaultContext, unit_of_work
from vault.storage.tables import CitizenRow


def kek_ids(ctx: VaultContext) -> set[str]:
    with unit_of_work(ctx) as work:
        return set(work.session.exec(select(CitizenRow.kek_id)).all())


def test_rotation_rewraps_everything_and_retires_the_old_kek(ctx: VaultContext,
                                                             tmp_path: Path) -> None:
    people = [world(ctx).citizen_id for _ in range(3)]
    old = ctx.keyring.current
    done = keys_service.rotate_keys(ctx, tmp_path / "keys", master_key=None)
    assert done.rewrapped == 3 and done.retired == (old.id,)
    fresh = load_keyring(tmp_path / "keys", master_key=None, production=False)
    assert fresh.ids() == [done.kek_id] and kek_ids(ctx) == {done.kek_id}
    ctx = replace(ctx, keyring=fresh)
    for cid in people:  # every record still opens, under the new KEK only
        assert records.read_records(ctx, cid)["identity.name"].value["family"] == "Lovelace"
    with unit_of_work(ctx) as work:
        for cid in people:  # the old KEK opens nothing wrapped now
            row = work.session.get(CitizenRow, cid)
            assert row is not None
            for kek_id in (row.kek_id, old.id):
                with pytest.raises(DecryptionFailed):
                    open_sealed(old.key, row.wrapped_key,
                                ad=data_key_ad(citizen_id=cid, kek_id=kek_id))


def test_a_rotation_killed_half_way_finishes_on_the_next_run(
    ctx: VaultContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    people = [citizens.enrol_citizen(ctx).id for _ in range(7)]
    monkeypatch.setattr(keys_service, "_BATCH", 3)
    calls = 0
    real_wrap = type(ctx.keyring).wrap

    def crash_after_two_batches(self, data_key, *, citizen_id):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 7:  # the third batch dies mid-way: its transaction never commits
            raise KeyboardInterrupt
        return real_wrap(self, data_key, citizen_id=citizen_id)

    monkeypatch.setattr(type(ctx.keyring), "wrap", crash_after_two_batches)
    with pytest.raises(KeyboardInterrupt):
        keys_service.rotate_keys(ctx, tmp_path / "keys", master_key=None)
    monkeypatch.setattr(type(ctx.keyring), "wrap", real_wrap)
    half = load_keyring(tmp_path / "keys", master_key=None, production=False)
    assert len(half.ids()) == 2 and len(kek_ids(ctx)) == 2  # some moved, some not yet
    ctx = replace(ctx, keyring=half)
    for cid in people:  # nothing is lost in between
        assert records.read_records(ctx, cid) == {}
    done = keys_service.rotate_keys(ctx, tmp_path / "keys", master_key=None)
    assert done.kek_id == half.current.id and done.rewrapped == 1
    assert kek_ids(ctx) == {half.current.id}


def test_a_running_vault_follows_a_rotation_made_by_another_process(
    ctx: VaultContext, tmp_path: Path
) -> None:
    cid = world(ctx).citizen_id
    # `vault keys rotate` runs elsewhere with its own keyring, over the same key file.
    other = replace(ctx, keyring=load_keyring(tmp_path / "keys", master_key=None,
                                              production=False))
    keys_service.rotate_keys(other, tmp_path / "keys", master_key=None)
    # This process never reloaded by hand, yet reads and new enrolments work.
    assert records.read_records(ctx, cid)["identity.name"].version == 1
    # It learnt the new current KEK when it met it, so new data keys use it too.
    assert ctx.keyring.current.id == kek_ids(ctx).pop()
    newcomer = citizens.enrol_citizen(ctx)
    assert records.read_records(ctx, newcomer.id) == {}


def test_new_data_keys_follow_the_key_file_at_once(ctx: VaultContext, tmp_path: Path) -> None:
    other = replace(ctx, keyring=load_keyring(tmp_path / "keys", master_key=None,
                                              production=False))
    keys_service.rotate_keys(other, tmp_path / "keys", master_key=None)
    # No read has shown this process the new KEK; enrolling must still not use the old,
    # retired one (that citizen's data would be lost at the next restart).
    newcomer = citizens.enrol_citizen(ctx)
    with unit_of_work(ctx) as work:
        row = work.session.get(CitizenRow, newcomer.id)
        now_current = load_keyring(tmp_path / "keys", master_key=None, production=False)
        assert row is not None and row.kek_id == now_current.current.id
