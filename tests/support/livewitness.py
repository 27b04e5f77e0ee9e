"""vault-witness instances served by uvicorn on loopback ports, for tests of the vault and
the auditor against real witnesses."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from livevault import free_port, serve_app

from ledger.cosignature import WitnessSigner
from ledger.note import Verifier
from ledger.witness import Witness, WitnessState
from ledger.witness.server import create_witness_app


@dataclass
class LiveWitness:
    signer: WitnessSigner
    url: str
    state: WitnessState

    @property
    def vkey(self) -> str:
        return str(self.signer.verifier())

    def held_size(self, origin: str) -> int:
        held = self.state.held(origin)
        return held.size if held else 0


@contextmanager
def live_witness(db_dir: Path, name: str, logs: Iterable[Verifier], *, port: int | None = None,
                 signer: WitnessSigner | None = None) -> Iterator[LiveWitness]:
    """A witness named `name` for `logs`, its state in `db_dir/<name>.db`."""
    signer = signer or WitnessSigner.generate(name)
    state = WitnessState(db_dir / f"{name}.db")
    app = create_witness_app(Witness(signer, list(logs), state))
    try:
        with serve_app(app, port or free_port(), what="a witness") as url:
            yield LiveWitness(signer, url, state)
    finally:
        state.close()
