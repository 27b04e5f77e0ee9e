"""The operator's commands: services, citizens, keys and the database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from vault.api.deps import AppState
from vault.cli.common import (
    Database,
    DataDir,
    Json,
    err,
    fail_cleanly,
    out,
    progress,
    require_vault,
    settings,
)
from vault.config import Settings
from vault.crypto.webhook_signing import printable, webhook_secret
from vault.domain.categories import issuable_codes
from vault.domain.codes import category_codes, derived_codes, purpose_codes, spelled
from vault.services import citizens, records, registry, sources
from vault.services.context import VaultContext, reading
from vault.services.keys import rotate_keys
from vault.services.webhooks import delivery_log
from vault.storage.database import make_engine
from vault.storage.datadir import prepare_data_dir
from vault.storage.schema import current_revision, migrate

service_app = typer.Typer(help="Register and manage services.", no_args_is_help=True)
citizen_app = typer.Typer(help="Enrol, inspect and erase citizens.", no_args_is_help=True)
keys_app = typer.Typer(help="Key-encryption keys.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)


@contextmanager
def vault_state(cfg: Settings) -> Iterator[AppState]:
    """The state of an existing vault (exit 2, creating nothing, if there is none)."""
    from vault.app import build_state

    require_vault(cfg)
    with fail_cleanly():
        state = build_state(cfg)
        try:
            yield state
        finally:
            state.engine.dispose()


@contextmanager
def vault_context(cfg: Settings) -> Iterator[VaultContext]:
    with vault_state(cfg) as state:
        yield state.ctx


def _secret(cfg: Settings) -> str | None:
    return cfg.master_key.get_secret_value() if cfg.master_key else None


_SEE = "`vault catalog list` says what each means."
_PURPOSE_HELP = f"Purpose code; repeatable. One of: {spelled(purpose_codes())}. {_SEE}"
_CATEGORY_HELP = f"Category code; repeatable. One of: {spelled(category_codes())}. {_SEE}"
_DERIVED_HELP = f"Derived answer; repeatable. One of: {spelled(derived_codes())}. {_SEE}"
_ISSUES_HELP = (f"A category the service issues (writes under a write grant); repeatable. "
                f"One of: {', '.join(issuable_codes())}.")


_JWKS_HELP = ("The service's public keys: a JWK Set (RFC 7517), or one JWK. EC P-256, "
              "no private parts; a key without a kid is named by its RFC 7638 thumbprint.")


def _read_jwks(path: Path) -> dict[str, Any]:
    """The JWK Set in `path`: a set as it is, one JWK as a set of one (checked later)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        err.print(f"[red]error:[/] {path} is not JSON: {exc}")
        raise typer.Exit(2) from None
    if not isinstance(doc, dict):
        err.print(f"[red]error:[/] {path} must hold a JWK Set or a JWK (a JSON object)")
        raise typer.Exit(2)
    return doc if "keys" in doc else {"keys": [doc]}


@service_app.command("add")
def service_add(
    name: Annotated[str, typer.Option(help="The service's name, as citizens will see it.")],
    jwks_file: Annotated[Path, typer.Option("--jwks-file", exists=True, dir_okay=False,
                                            help=_JWKS_HELP)],
    redirect_uri: Annotated[list[str], typer.Option("--redirect-uri", help="Repeatable.")],
    purpose: Annotated[list[str], typer.Option("--purpose", help=_PURPOSE_HELP)],
    category: Annotated[list[str] | None, typer.Option(
        "--category", help=_CATEGORY_HELP + " What it may read.")] = None,
    derived: Annotated[list[str] | None, typer.Option("--derived", help=_DERIVED_HELP)] = None,
    issues: Annotated[list[str] | None, typer.Option("--issues", help=_ISSUES_HELP)] = None,
    source_url: Annotated[str | None, typer.Option(
        "--source-url", help="The service holds its --issues categories at source, at this "
                             "URL: the vault stores no value of them for anyone and asks "
                             "the source (a signed request) each time a service reads one. "
                             "Any category may be held at source.")] = None,
    description: Annotated[str, typer.Option(help="What the service does.")] = "",
    max_days: Annotated[int, typer.Option("--max-days", help="Longest grant.")] = 365,
    webhook_url: Annotated[str | None, typer.Option("--webhook-url")] = None,
    privacy_notice_url: Annotated[str | None, typer.Option(
        "--privacy-notice-url",
        help="The service's own privacy notice (default: the page the vault publishes at "
             "/services/CLIENT_ID/privacy).")] = None,
    dpia_url: Annotated[str | None, typer.Option(
        "--dpia-url", help="Its data protection impact assessment, published elsewhere "
                           "(default: the vault's page at /services/CLIENT_ID/dpia).")] = None,
    dpia_text: Annotated[str | None, typer.Option(
        "--dpia-text", help="The assessment's text, for the vault's DPIA page (paragraphs "
                            "separated by a blank line).")] = None,
    contact: Annotated[str | None, typer.Option(
        "--contact", help="An email address or URL for questions about the data.")] = None,
    controller: Annotated[str | None, typer.Option(
        "--controller", help="The organisation responsible for the data, if not the "
                             "service itself (e.g. 'Riverside Council').")] = None,
    public_url: Annotated[str | None, typer.Option(
        "--public-url", help="The vault's public URL, for the pages' links (default: "
                             "VAULT_PUBLIC_URL, else http://localhost:PORT).")] = None,
    database: Database = None,
    data_dir: DataDir = None,
    as_json: Json = False,
) -> None:
    """Register a service; prints its client_id. `vault catalog list` says what each
    purpose, category and derived answer means. A service needs something to read
    (--category, --derived) or to issue (--issues), or both."""
    jwks = _read_jwks(jwks_file)
    cfg = settings(database_url=database, data_dir=data_dir, public_url=public_url)
    with vault_state(cfg) as state:
        client_id = registry.register_service(state.ctx, registry.Registration(
            name=name, description=description or name, purposes=purpose,
            categories=category or (), derived=derived or (), issues=issues or (),
            jwks=jwks, source_url=source_url,
            redirect_uris=redirect_uri, max_days=max_days, webhook_url=webhook_url,
            privacy_notice_url=privacy_notice_url, dpia_url=dpia_url, dpia_text=dpia_text,
            contact=contact, controller=controller), public_url=cfg.base_url)
        secret = printable(webhook_secret(state.app_secret, client_id)) if webhook_url else None
    if as_json:
        out.print_json(json.dumps({"client_id": client_id, "webhook_secret": secret}))
        return
    out.print(client_id)
    if secret:
        out.print(f"webhook secret (give it to the service; it verifies deliveries): {secret}")


@service_app.command("list")
def service_list(database: Database = None, data_dir: DataDir = None,
                 as_json: Json = False) -> None:
    """Every registered service."""
    with vault_context(settings(database_url=database, data_dir=data_dir)) as ctx:
        rows = registry.list_services(ctx)
        with reading(ctx) as session:
            held = sources.held_categories(session)
    docs = [{"client_id": r.id, "name": r.name, "active": r.active, "purposes": r.purposes,
             "categories": r.categories, "derived": r.derived, "issues": r.issues,
             "max_days": r.max_days,
             "held_at_source": sorted(c for c, h in held.items() if h.service_id == r.id),
             "source_url": next((h.url for h in held.values() if h.service_id == r.id), None)}
            for r in rows]
    if as_json:
        out.print_json(json.dumps(docs))
        return
    for d in docs:
        status = "active" if d["active"] else "[red]suspended[/]"
        issuer = f"  issues: {', '.join(d['issues'])}" if d["issues"] else ""  # type: ignore[arg-type]
        if d["held_at_source"]:
            issuer += f"  held at source ({d['source_url']})"
        out.print(f"{d['client_id']}  {d['name']}  ({status})  purposes: "
                  f"{', '.join(d['purposes'])}{issuer}")  # type: ignore[arg-type]


@service_app.command("webhook-secret")
def service_webhook_secret(client_id: str, database: Database = None,
                           data_dir: DataDir = None) -> None:
    """The secret a service checks webhook signatures with (Standard Webhooks)."""
    with vault_state(settings(database_url=database, data_dir=data_dir)) as state:
        with reading(state.ctx) as session:
            registry.get_service(session, client_id)  # NotFound for a mistyped id
        out.print(printable(webhook_secret(state.app_secret, client_id)))


@service_app.command("deliveries")
def service_deliveries(client_id: str, database: Database = None, data_dir: DataDir = None,
                       limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
                       as_json: Json = False) -> None:
    """The service's latest webhook delivery attempts, newest first."""
    cfg = settings(database_url=database, data_dir=data_dir)
    with vault_context(cfg) as ctx, reading(ctx) as session:
        registry.get_service(session, client_id)
        docs = [{"message_id": r.message_id, "attempt": r.attempt, "at": r.at.isoformat(),
                 "status": r.status, "error": r.error, "ms": r.ms}
                for r in delivery_log(session, client_id, limit=limit)]
    if as_json:
        out.print_json(json.dumps(docs))
        return
    if not docs:
        out.print("no deliveries yet")
    for d in docs:
        outcome = d["status"] if d["error"] is None else f"[red]{d['error']}[/]"
        out.print(f"{d['at']}  {d['message_id']}  attempt {d['attempt']}  {outcome}")


@service_app.command("keys")
def service_keys(
    client_id: str,
    jwks_file: Annotated[Path, typer.Option("--jwks-file", exists=True, dir_okay=False,
                                            help=_JWKS_HELP)],
    database: Database = None,
    data_dir: DataDir = None,
) -> None:
    """Replace a service's public keys (rotation): register the old and the new key,
    let the service sign with the new one, then register the new one alone. Readers
    see the set at /services/CLIENT_ID/jwks within five minutes."""
    jwks = _read_jwks(jwks_file)
    with vault_context(settings(database_url=database, data_dir=data_dir)) as ctx:
        registry.replace_service_keys(ctx, client_id, jwks)
        kids = [k["kid"] for k in registry.service_jwks(ctx, client_id)["keys"]]
    out.print(f"{client_id} now has {len(kids)} key(s): {', '.join(kids)}")


@service_app.command("suspend")
def service_suspend(client_id: str, database: Database = None,
                    data_dir: DataDir = None) -> None:
    """Stop a service at once: none of its grants allows a read while suspended."""
    with vault_context(settings(database_url=database, data_dir=data_dir)) as ctx:
        registry.suspend_service(ctx, client_id)
    out.print(f"{client_id} suspended")


@citizen_app.command("enrol")
def citizen_enrol(database: Database = None, data_dir: DataDir = None,
                  as_json: Json = False) -> None:
    """Enrol a new citizen (the wallet does this at sign-up); prints the citizen id."""
    with vault_context(settings(database_url=database, data_dir=data_dir)) as ctx:
        c = citizens.enrol_citizen(ctx)
    if as_json:
        out.print_json(json.dumps({"citizen_id": c.id, "subject": c.subject}))
    else:
        out.print(c.id)


@citizen_app.command("write")
def citizen_write(
    citizen_id: str,
    category: str,
    value: Annotated[str, typer.Argument(help="The value as JSON.")],
    source: Annotated[str, typer.Option(help="'citizen' or the issuing service's id.")]
    = "citizen",
    database: Database = None,
    data_dir: DataDir = None,
) -> None:
    """Write a record (validated against its category) for a citizen."""
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        err.print(f"[red]error:[/] the value is not JSON: {exc}")
        raise typer.Exit(2) from None
    with vault_context(settings(database_url=database, data_dir=data_dir)) as ctx:
        rec = records.write_record(ctx, citizen_id, category, parsed, source=source)
    out.print(f"{category} version {rec.version} written")


@citizen_app.command("export")
def citizen_export(citizen_id: str, database: Database = None,
                   data_dir: DataDir = None) -> None:
    """Print everything held for a citizen as JSON (their right of access)."""
    with vault_context(settings(database_url=database, data_dir=data_dir)) as ctx:
        doc = records.export_all(ctx, citizen_id)
    out.print_json(json.dumps(doc))


@citizen_app.command("erase")
def citizen_erase(
    citizen_id: str,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    database: Database = None,
    data_dir: DataDir = None,
) -> None:
    """Erase a citizen for good: their key is destroyed, so nothing of theirs can be read."""
    if not yes:
        typer.confirm(f"Erase {citizen_id} for good?", abort=True)
    with vault_context(settings(database_url=database, data_dir=data_dir)) as ctx:
        seq = citizens.erase_citizen(ctx, citizen_id)
    out.print(f"{citizen_id} erased (ledger entry {seq})")


@keys_app.command("rotate")
def keys_rotate(database: Database = None, data_dir: DataDir = None) -> None:
    """Re-wrap every data key under a new KEK. Safe to interrupt; run again to finish."""
    cfg = settings(database_url=database, data_dir=data_dir)
    with vault_context(cfg) as ctx:
        bar = progress(1, "re-wrapping", threshold=1)
        with bar:
            task = bar.add_task("data keys", total=None)
            done = rotate_keys(ctx, cfg.key_dir, master_key=_secret(cfg),
                               on_progress=lambda n, t: bar.update(task, completed=n, total=t))
    out.print(f"[green]✓[/] {done.rewrapped:,} data keys now under {done.kek_id}"
              + (f"; retired {', '.join(done.retired)}" if done.retired else ""))


@db_app.command("upgrade")
def db_upgrade(database: Database = None, data_dir: DataDir = None) -> None:
    """Bring the database schema up to date (the server also does this on start); in a
    data directory with no vault yet, make a new one."""
    cfg = settings(database_url=database, data_dir=data_dir)
    with fail_cleanly():
        if cfg.database_url is None:  # the SQLite file lives in the data directory
            prepare_data_dir(cfg.data_dir)
        engine = make_engine(cfg.database)
        try:
            migrate(engine)
            out.print(f"schema at {current_revision(engine)}")
        finally:
            engine.dispose()
