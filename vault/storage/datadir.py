"""The data directory on disk: open to its owner only, whatever the umask.

It holds the SQLite database (who has grants with which service, session and token
hashes) and the key files, so it is 0700: nothing in it can be reached by another user
even if one of its files were created looser. A directory found looser (made by an older
vault, or by hand) is tightened, and the log says so. The database files themselves are
0600 (`vault.storage.database`), and the key files too (`vault.crypto.keyfiles`).
"""

from __future__ import annotations

import logging
import stat
from pathlib import Path

__all__ = ["DATA_DIR_MODE", "prepare_data_dir"]

DATA_DIR_MODE = 0o700

log = logging.getLogger(__name__)


def prepare_data_dir(path: Path) -> None:
    """Create `path` (and its parents) if missing, and leave it mode 0700."""
    path.mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode != DATA_DIR_MODE:
        path.chmod(DATA_DIR_MODE)
        if mode & 0o077:
            log.warning("the data directory was open to other users: it is now 0700",
                        extra={"path": str(path), "was": f"{mode:o}"})
