"""`vault-witness`: run a C2SP witness for the logs whose keys it is given."""

from __future__ import annotations

import json
import os
import secrets
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from ledger.cosignature import WitnessSigner
from ledger.errors import KeyFormatError
from ledger.note import Verifier

__all__ = ["app", "main"]

app = typer.Typer(help="A transparency log witness (C2SP tlog-witness, tlog-cosignature).",
                  no_args_is_help=True, add_completion=False)


def _load_signer(path: Path) -> WitnessSigner:
    try:
        return WitnessSigner.parse(path.read_text())
    except OSError as e:
        raise typer.BadParameter(f"cannot read the key file: {e.strerror}") from None
    except KeyFormatError as e:
        raise typer.BadParameter(f"{path} is not a witness key: {e}") from None


@app.command()
def keygen(
    out: Annotated[Path, typer.Option(help="File to write the private key to (mode 0600)")],
    name: Annotated[str | None, typer.Option(
        help="The witness's name (default <host>/witness-<random>)")] = None,
) -> None:
    """Make a witness key, write it to OUT, and print its verifier key."""
    name = name or f"{socket.gethostname()}/witness-{secrets.token_hex(3)}"
    try:
        signer = WitnessSigner.generate(name)
    except KeyFormatError as e:
        raise typer.BadParameter(str(e), param_hint="--name") from None
    try:
        # O_EXCL: never replace a witness's key, which would forget what it cosigned.
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        typer.echo(f"{out} exists: a witness keeps its key", err=True)
        raise typer.Exit(1) from None
    with os.fdopen(fd, "w") as f:
        f.write(str(signer) + "\n")
    typer.echo(str(signer.verifier()))


@app.command()
def key(key: Annotated[Path, typer.Option(help="The witness's private key file")]) -> None:
    """Print the verifier key of a witness key file."""
    typer.echo(str(_load_signer(key).verifier()))


@app.command()
def serve(
    key: Annotated[Path, typer.Option(help="The witness's private key file")],
    log: Annotated[list[str], typer.Option(help="Verifier key of a log to witness (repeat)")],
    db: Annotated[Path | None, typer.Option(
        help="SQLite file of what it cosigned (default: the key file with .db)")] = None,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 7380,
) -> None:
    """Serve POST /add-checkpoint for the given logs."""
    import uvicorn

    from ledger.witness.server import create_witness_app
    from ledger.witness.state import WitnessState
    from ledger.witness.witness import Witness

    signer = _load_signer(key)
    try:
        logs = [Verifier.parse(v) for v in log]
    except KeyFormatError as e:
        raise typer.BadParameter(f"not a log verifier key: {e}", param_hint="--log") from None
    state = WitnessState(db or key.with_suffix(".db"))
    witness = Witness(signer, logs, state)
    typer.echo(f"witness {signer.verifier()} for {', '.join(witness.origins)} "
               f"on http://{host}:{port}")
    try:
        uvicorn.run(create_witness_app(witness), host=host, port=port, log_level="warning")
    finally:
        state.close()


@app.command()
def evidence(
    db: Annotated[Path, typer.Option(help="The witness's SQLite file")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per refusal")
                       ] = False,
) -> None:
    """Show every checkpoint the witness refused as inconsistent with what it had
    cosigned, with both signed checkpoints: a log that signed both showed two histories.
    Exit 0 when there is none, 1 when there is."""
    from ledger.witness.state import WitnessState

    if not db.is_file():
        raise typer.BadParameter(f"{db} does not exist", param_hint="--db")
    state = WitnessState(db)
    try:
        found = state.evidence()
    finally:
        state.close()
    for e in found:
        if as_json:
            typer.echo(json.dumps({"origin": e.origin, "seen_at": e.seen_at, "reason": e.reason,
                                   "cosigned": e.held_note, "old_size": e.old_size,
                                   "proof": e.proof.split(), "refused": e.submitted_note}))
        else:
            when = datetime.fromtimestamp(e.seen_at, UTC).isoformat()
            typer.echo(f"{when} {e.origin}: {e.reason}\n--- cosigned:\n{e.held_note}"
                       f"--- refused (old size {e.old_size}):\n{e.submitted_note}")
    if not as_json:
        typer.echo(f"{len(found)} inconsistent checkpoint{'' if len(found) == 1 else 's'} "
                   "refused")
    raise typer.Exit(1 if found else 0)


def main() -> None:
    app()
