"""The only place that touches key material: key files, the KEK keyring, envelope encryption.

Everyone else calls the recipes: `seal` / `open_sealed` with `record_ad`, the keyring's
`wrap` / `unwrap` for citizen data keys, `commit` under a `commitment_key`.
"""

from vault.crypto.envelope import (
    KEY_SIZE,
    commit,
    commitment_key,
    data_key_ad,
    new_key,
    open_sealed,
    record_ad,
    seal,
)
from vault.crypto.errors import CryptoError, DecryptionFailed, UnknownKek
from vault.crypto.keyfiles import load_app_secret, load_ledger_signer
from vault.crypto.keyring import (
    MASTER_KEY_FILE,
    Kek,
    Keyring,
    add_new_kek,
    drop_kek,
    kek_id,
    load_keyring,
    new_master_key,
)

__all__ = [
    "KEY_SIZE",
    "MASTER_KEY_FILE",
    "CryptoError",
    "DecryptionFailed",
    "Kek",
    "Keyring",
    "UnknownKek",
    "add_new_kek",
    "commit",
    "commitment_key",
    "data_key_ad",
    "drop_kek",
    "kek_id",
    "load_app_secret",
    "load_keyring",
    "load_ledger_signer",
    "new_key",
    "new_master_key",
    "open_sealed",
    "record_ad",
    "seal",
]
