"""`vault-audit`: verify a vault's ledger from the outside (ARCHITECTURE §7)."""

from __future__ import annotations

import base64
import json
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from clients.auditor._plural import counted
from clients.auditor.fetch import AuditorError, LedgerClient
from clients.auditor.live import LiveReport, grant_now
from clients.auditor.receipt import (
    RECEIPT_TYPE,
    Problem,
    ReceiptReport,
    is_receipt,
    verify_receipt,
)
from clients.auditor.transparency import check_transparency, fetch_report
from clients.auditor.transparency import render_text as transparency_text
from clients.auditor.verify import relying_party_of, render_text, verify_export, verify_url
from clients.auditor.watch import (
    CheckpointRefused,
    Outcome,
    WatchError,
    WatchReport,
    poll,
)
from clients.auditor.witnesses import WitnessedClient, WitnessPolicy, WitnessRefusal
from ledger.errors import LedgerError
from ledger.note import Verifier

app = typer.Typer(help="Verify a Citizen Data Vault's ledger without trusting its operator.",
                  no_args_is_help=True, add_completion=False)
out = Console()
err = Console(stderr=True)


def _print_json(doc: Any) -> None:
    """One JSON document on stdout, written as is: rich would read "[...]" in a
    message as markup and ":name:" as an emoji, and so change the JSON."""
    typer.echo(json.dumps(doc))


def _usage(message: str, as_json: bool) -> typer.Exit:
    """Exit 2: the command could not run (bad options, unreachable vault, unreadable file)."""
    if as_json:
        _print_json({"ok": False, "error": message, "index": None,
                              "reason": message})
    else:
        err.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)  # paths stay whole
    return typer.Exit(2)


#: `--witness VKEY ... --quorum N` (ARCHITECTURE §10), on verify, watch and receipt.
WitnessOption = Annotated[list[str] | None, typer.Option(
    "--witness", help="A witness's verifier key (repeatable): the checkpoint needs --quorum "
                      "valid cosignatures (C2SP tlog-cosignature) from these keys. As 'VKEY "
                      "URL', also compare with what that witness last cosigned: a fork "
                      "is refused and shown.")]
QuorumOption = Annotated[int | None, typer.Option(
    help="How many of the --witness keys must have cosigned the checkpoint (default: all "
         "of them).")]


def _client(url: str, api_key: str | None, policy: WitnessPolicy | None) -> LedgerClient:
    if policy is None:
        return LedgerClient(url, api_key=api_key)
    return WitnessedClient(url, api_key=api_key, policy=policy)


def _refused(exc: WitnessRefusal, as_json: bool) -> typer.Exit:
    """Exit 1: the witnesses do not back the checkpoint, so nothing it covers is trusted."""
    if as_json:
        _print_json({"ok": False, "error": str(exc), "problem": exc.problem,
                     "index": None, "reason": str(exc)})
    else:
        err.print(f"[red]✗ {escape(str(exc))}[/]", soft_wrap=True)
    return typer.Exit(1)


@app.command()
def verify(
    url: Annotated[str | None, typer.Argument(
        help="The vault's base URL, e.g. http://localhost:8000, or an NDJSON export "
             "(optional with --from-export)")] = None,
    key: Annotated[str | None, typer.Option(
        help="The ledger's verifier key (name+id+key). Pin it: without it the vault's own "
             "/ledger/key is trusted.")] = None,
    api_key: Annotated[str | None, typer.Option(
        "--api-key", envvar="VAULT_AUDITOR_API_KEY", help="Auditor API key.")] = None,
    from_export: Annotated[Path | None, typer.Option(
        "--from-export", help="Verify this NDJSON export (`vault ledger export`) instead of "
                              "fetching the entries.")] = None,
    checkpoint: Annotated[Path | None, typer.Option(
        help="With --from-export: the signed checkpoint to hold it against (default: the "
             "one the URL serves, if a URL is given; none otherwise).")] = None,
    openings: Annotated[Path | None, typer.Option(
        help="The openings of the sealed entries (NDJSON, `vault ledger export "
             "--openings`). Default: the vault's, when --api-key is the auditor's; without "
             "openings the stories of sealed entries are not checked.")] = None,
    state: Annotated[Path | None, typer.Option(
        help="Save the verified checkpoint and the checks' state here, for `watch`.")
    ] = None,
    rp_id: Annotated[str | None, typer.Option(
        "--rp-id", help="The passkeys' relying party ID (default: the URL's host).")] = None,
    origin: Annotated[list[str] | None, typer.Option(
        help="An allowed WebAuthn origin (repeatable; default: the URL's origin).")] = None,
    witness: WitnessOption = None,
    quorum: QuorumOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check every entry (seq, prev link, leaf hash), the tree against the signed
    checkpoint, every grant's story (passkey signatures, terms, transitions, reads),
    every record's (issuers write and withdraw only under a live write grant, disputes
    and reads name only what an issuer wrote or a source holds) and that no entry holds
    personal data. Sealed (v2) entries are checked against their openings first; without
    openings, only the log and what the entries show. Exit 0 all verified, 1 failures, 2
    usage or network errors."""
    try:
        pinned = Verifier.parse(key) if key else None
        policy = WitnessPolicy.from_options(witness, quorum)
        if url is not None and from_export is None and "://" not in url:
            from_export, url = Path(url), None  # a file: `verify FILE`
        if url is None and from_export is None:
            raise AuditorError("give the vault's URL, or --from-export FILE")
        if checkpoint is not None and from_export is None:
            raise AuditorError("--checkpoint goes with --from-export")
        if state is not None and url is None and checkpoint is None:
            raise AuditorError("--state needs a signed checkpoint: give the URL or "
                               "--checkpoint")
        default_rp, default_origins = (relying_party_of(url) if url else
                                       relying_party_of(origin[0]) if origin else (None, []))
        rp, origins = rp_id or default_rp, origin or default_origins
        if rp is None:
            raise AuditorError("without a URL, give the passkeys' --rp-id and --origin")
        note = checkpoint.read_text(encoding="utf-8") if checkpoint else None
        if policy is not None and note is None and url is None:
            raise AuditorError("--witness needs a checkpoint: give the URL or --checkpoint")
        if policy is not None and note is not None:
            policy.require(note)
        with ExitStack() as stack:
            client = stack.enter_context(_client(url, api_key, policy)) if url else None
            bar = stack.enter_context(Progress(
                TextColumn("verifying"), BarColumn(), MofNCompleteColumn(), console=err,
                transient=True, disable=as_json or not err.is_terminal))
            task = bar.add_task("entries", total=None)

            def progress(n: int, total: int | None) -> None:
                bar.update(task, completed=n, total=total)

            if from_export is None:
                assert client is not None
                report = verify_url(client, expected_key=pinned, rp_id=rp, origins=origins,
                                    on_progress=progress, state_dir=state, openings=openings)
            else:
                if note is None and client is not None:
                    note = client.checkpoint()
                vkey = pinned or (Verifier.parse(client.key()) if note and client else None)
                report = verify_export(from_export, note=note, expected_key=vkey,
                                       key_pinned=pinned is not None, rp_id=rp,
                                       origins=origins, on_progress=progress, state_dir=state,
                                       openings=openings)
    except WitnessRefusal as exc:
        raise _refused(exc, as_json) from None
    except (AuditorError, LedgerError, OSError) as exc:
        raise _usage(str(exc), as_json) from None
    if as_json:
        _print_json(report.to_json())
    else:
        for style, text in render_text(report):
            out.print(text, style=style or None, markup=False, highlight=False, soft_wrap=True)
        if policy is not None and report.note is not None:
            check = policy.check(report.note)
            out.print(f"✓ the checkpoint is cosigned by {len(check.valid)} of the "
                      f"{len(policy.witnesses)} witnesses given (quorum {policy.quorum})",
                      markup=False, highlight=False)
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def key(url: Annotated[str, typer.Argument(help="The vault's base URL")]) -> None:
    """Print the ledger's verifier key, to pin it for later runs."""
    try:
        with LedgerClient(url) as client:
            out.print(str(Verifier.parse(client.key())))
    except (LedgerError, AuditorError) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None


def _failure_line(f: Any) -> str:
    where = f"entry {f.index}: " if f.index is not None else ""
    return f"[red]✗[/] {where}{escape(f.rule)}: {escape(f.detail)}"


def _out(text: str) -> None:
    out.print(text, soft_wrap=True)  # keys and paths stay whole, for grep and copy


def _err(text: str) -> None:
    err.print(text, soft_wrap=True)


def _say_watch(report: WatchReport, state: Path, as_json: bool) -> None:
    """One poll's result: a JSON line, or a few lines for people (loud when it matters)."""
    if as_json:
        _print_json(report.to_json())
        return
    cp, prev = report.checkpoint, report.previous
    if report.key_source == "first use":
        _err(f"[bold yellow]! trusting on first use the key the vault serves: {report.key}"
                  f"[/]\n  It is {'now' if report.saved else 'not yet'} pinned in {state}; "
                  "check it against the operator's published key (or pass --key).")
    if report.outcome is Outcome.REWRITTEN:
        assert prev is not None
        _err("[bold red]✗✗✗ HISTORY REWRITTEN OR FORKED ✗✗✗[/]")
        _err(f"[red]{escape(report.reason)}[/]\n  trusted: {counted(prev.size, 'entry')}, "
             f"root {base64.b64encode(prev.root).decode()}\n  served:  "
             f"{counted(cp.size, 'entry')}, root {base64.b64encode(cp.root).decode()}")
        _err("  evidence kept (the trusted state is unchanged):")
        for path in report.evidence:
            _err(f"    {escape(str(path))}")
    elif report.outcome is Outcome.FIRST:
        if report.saved:
            _out(f"[green]✓[/] first run: {counted(report.new_entries, 'entry')} of "
                 f"{cp.origin} verified (signature, seq, prev links, leaf hashes, root, "
                 "every grant's story, no personal data); state saved in "
                 f"{escape(str(state))}")
        else:
            _out(f"[red]✗ first run: does not verify[/] "
                 f"({counted(len(report.failures), 'failure')}); nothing saved: the next "
                 "poll verifies everything again")
    elif report.outcome is Outcome.UNCHANGED:
        _out(f"[green]✓[/] unchanged: {counted(cp.size, 'entry')} of {cp.origin}")
    else:
        assert prev is not None
        mark = "[green]✓[/]" if not report.failures else "[red]✗[/]"
        _out(f"{mark} {prev.size:,} → {counted(cp.size, 'entry')}: consistency proof "
             f"verified, {counted(report.new_entries, 'new entry', 'new entries')} checked"
             + (f", {counted(len(report.failures), 'failure')}" if report.failures else ""))
    if report.stories != "checked" and report.outcome is not Outcome.REWRITTEN:
        _out("[yellow]! stories not checked: the entries are sealed, and no openings were "
             "read (watch with the auditor's --api-key from a state saved with it)[/]")
    for w in report.warnings:
        _out(f"[yellow]warning[/] {escape(str(w))}")
    for f in report.failures:
        _out(_failure_line(f))
    if report.earlier_failures:
        _out(f"[red]✗[/] {counted(len(report.earlier_failures), 'failure')} found by "
             f"earlier polls {'is' if len(report.earlier_failures) == 1 else 'are'} still "
             f"in the ledger (listed in {escape(str(state))}/watch.json)")


@app.command()
def watch(
    url: Annotated[str, typer.Argument(help="The vault's base URL, e.g. http://localhost:8000")],
    state: Annotated[Path, typer.Option(
        help="Directory that remembers the last verified checkpoint between polls.")],
    key: Annotated[str | None, typer.Option(
        help="The ledger's verifier key. Without it, the key pinned in --state is used, or "
             "on the first run the vault's own (trust on first use).")] = None,
    interval: Annotated[float, typer.Option(help="Seconds between polls.", min=0.1)] = 60.0,
    once: Annotated[bool, typer.Option("--once", help="Poll once and exit (cron, tests).")
                    ] = False,
    rp_id: Annotated[str | None, typer.Option(
        "--rp-id", help="The passkeys' relying party ID (default: the URL's host).")] = None,
    origin: Annotated[list[str] | None, typer.Option(
        help="An allowed WebAuthn origin (repeatable; default: the URL's origin).")] = None,
    api_key: Annotated[str | None, typer.Option(
        "--api-key", envvar="VAULT_AUDITOR_API_KEY", help="Auditor API key.")] = None,
    witness: WitnessOption = None,
    quorum: QuorumOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per poll.")
                       ] = False,
) -> None:
    """Verify each new checkpoint against the last one: a consistency proof and the new
    entries only. Exit 0 all verified, 1 a failure or a refused checkpoint, 2 usage or
    network errors (retried until Ctrl-C without --once), 3 a rewritten or forked
    history."""
    try:
        pinned = Verifier.parse(key) if key else None
    except LedgerError as exc:
        raise _usage(f"--key: {exc}", as_json) from None
    try:
        policy = WitnessPolicy.from_options(witness, quorum)
    except AuditorError as exc:
        raise _usage(str(exc), as_json) from None
    worst = 0
    # A checkpoint without its quorum is refused (CheckpointRefused: exit 1) before any
    # of it is trusted or remembered.
    with _client(url, api_key, policy) as client:
        while True:
            try:
                report = _poll_with_bar(client, state, url=url, expected_key=pinned,
                                        rp_id=rp_id, origins=origin, quiet=as_json)
                _say_watch(report, state, as_json)
                code = report.exit_code
            except CheckpointRefused as exc:  # needs a person: stop
                _say_error(exc, 1, as_json)
                raise typer.Exit(1) from None
            except WatchError as exc:  # an unusable state directory
                _say_error(exc, 2, as_json)
                raise typer.Exit(2) from None
            except AuditorError as exc:  # the vault cannot be read: try again next time
                code = 2
                _say_error(exc, 2, as_json)
            except KeyboardInterrupt:
                raise typer.Exit(worst) from None
            worst = max(worst, code)
            if once or code == 3:
                raise typer.Exit(code)
            try:
                time.sleep(interval)
            except KeyboardInterrupt:
                raise typer.Exit(worst) from None


def _poll_with_bar(client: LedgerClient, state: Path, *, quiet: bool, **kw: Any
                   ) -> WatchReport:
    """A poll with a progress bar on a terminal (a first run fetches every entry)."""
    with Progress(TextColumn("verifying"), BarColumn(), MofNCompleteColumn(), console=err,
                  transient=True, disable=quiet or not err.is_terminal) as bar:
        task = bar.add_task("entries", total=None)
        return poll(client, state, on_progress=lambda n, t: bar.update(
            task, completed=n, total=t), **kw)


def _say_error(exc: Exception, code: int, as_json: bool) -> None:
    if as_json:
        _print_json({"ok": False, "outcome": "error", "exit_code": code,
                              "reason": str(exc)})
    else:
        err.print(f"[red]✗ {escape(str(exc))}[/]")


def _receipt_rp(doc: Any) -> tuple[Any, Any]:
    """The relying party a receipt names for itself (shown when none was pinned)."""
    passkeys = doc.get("ledger_evidence", {}).get("passkeys") if isinstance(doc, dict) else None
    if not isinstance(passkeys, dict):
        return None, None
    return passkeys.get("rp_id"), passkeys.get("origins")


def _disagreements(doc: Any, key: Verifier | None, rp_id: str | None,
                   origins: list[str] | None) -> list[Problem]:
    """Where the receipt names another key or relying party than the pinned ones: the
    pinned values are what is checked, but a receipt that says otherwise is not intact."""
    found: list[Problem] = []
    evidence = doc.get("ledger_evidence") if isinstance(doc, dict) else None
    if not isinstance(evidence, dict):
        return found  # verify_receipt says so already
    own_key = evidence.get("verifier_key")
    if key is not None and own_key != str(key):
        found.append(Problem("key", f"the receipt names the key {own_key}, not the pinned "
                                    f"{key}"))
    own_rp, own_origins = _receipt_rp(doc)
    if rp_id is not None and own_rp != rp_id:
        found.append(Problem("format", f"the receipt names the RP ID {own_rp!r}, not the "
                                       f"pinned {rp_id!r}"))
    if origins and (not isinstance(own_origins, list)
                    or any(o not in origins for o in own_origins)):
        found.append(Problem("format", f"the receipt names the origins {own_origins!r}, "
                                       f"not among the pinned {origins}"))
    return found


def _witness_problems(doc: Any, policy: WitnessPolicy | None) -> list[Problem]:
    """The receipt's checkpoint must carry the witnesses' quorum (ARCHITECTURE §10)."""
    if policy is None:
        return []
    evidence = doc.get("ledger_evidence") if isinstance(doc, dict) else None
    note = evidence.get("checkpoint") if isinstance(evidence, dict) else None
    if not isinstance(note, str):
        return [Problem("witnesses", "witness-quorum: the receipt has no checkpoint note")]
    why = policy.problem(note)
    return [] if why is None else [Problem("witnesses", why)]


def _read_receipt(file: Path) -> tuple[bytes, Any]:
    """The file's bytes and JSON, or AuditorError saying plainly why there is nothing to
    check (a usage error, not a verdict on a receipt)."""
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise AuditorError(f"no such file: {file}") from None
    except IsADirectoryError:
        raise AuditorError(f"{file} is a directory, not a receipt file") from None
    except PermissionError:
        raise AuditorError(f"cannot read {file}: permission denied") from None
    except OSError as exc:
        raise AuditorError(f"cannot read {file}: {exc.strerror or exc}") from None
    try:
        doc = json.loads(data)
    except ValueError as exc:  # not UTF-8 either
        raise AuditorError(f"{file} is not JSON, so not a consent receipt ({exc})") from None
    if not is_receipt(doc):
        raise AuditorError(f"{file} is not a consent receipt: the wallet's receipts are "
                           f"JSON objects of @type {RECEIPT_TYPE} with ledger_evidence")
    return data, doc


def _snapshot_json(report: ReceiptReport) -> dict[str, Any] | None:
    last = report.events[-1] if report.events else None
    return None if last is None else {
        "state": report.status, "since": last.time, "ledger_index": last.index,
        "made_at": report.made_at}


def _live_json(live: LiveReport, url: str) -> dict[str, Any]:
    cp, last = live.checkpoint, live.last
    return {
        "url": url, "ok": live.ok, "state": live.state, "changed": live.changed,
        "since": None if last is None else last.time,
        "ledger_index": None if last is None else last.index,
        "changes": [{"index": e.index, "kind": e.kind, "time": e.time} for e in live.changes],
        "reads_since": live.reads, "entries_read": live.entries_read,
        "checkpoint": None if cp is None else {
            "origin": cp.origin, "size": cp.size, "root": base64.b64encode(cp.root).decode()}}


def _say_snapshot(report: ReceiptReport, live: LiveReport | None) -> None:
    """The receipt's status as what it is, a snapshot, and the grant now if asked."""
    last = report.events[-1]
    made = (f"at {report.made_at}" if report.made_at else "(the receipt gives no time)")
    then = (f"  {escape(str(report.status))} (since {last.time}, ledger entry {last.index}) "
            f"when this receipt was made, {escape(made)}")
    if live is None:
        _out(f"{then}. [yellow]A receipt is a snapshot[/]: it does not show what happened "
             "to the grant since; add --live URL to check the grant now")
        return
    if live.state is None or live.last is None:
        _out(f"{then}; [red]now: unknown[/] (the vault's ledger does not verify)")
        return
    now = live.last
    cp = live.checkpoint
    assert cp is not None
    if live.changed:
        said = (f"[bold]{escape(live.state)} at {now.time} (ledger entry {now.index})[/]")
    else:
        said = f"still {escape(live.state)}, no change"
    _out(f"{then}; now: {said}")
    steps = ", ".join(f"{e.kind} at {e.time} (entry {e.index})" for e in live.changes)
    _out(f"  since the receipt: {steps or 'no grant entry'}; "
         f"{counted(live.reads, 'read')} recorded; checked against the vault's checkpoint "
         f"of {counted(cp.size, 'entry')} now (consistent with the receipt's; all "
         f"{counted(live.entries_read, 'entry')} after the receipt's last were read, and "
         "give its root)")


@app.command()
def receipt(
    file: Annotated[Path, typer.Argument(help="A consent receipt downloaded from the wallet "
                                              "(JSON).")],
    key: Annotated[str | None, typer.Option(
        help="The ledger's verifier key. Pin it: without it the receipt's own key is used, "
             "which only shows the receipt agrees with itself.")] = None,
    rp_id: Annotated[str | None, typer.Option(
        "--rp-id", help="The passkeys' relying party ID (default: the receipt's own, or "
                        "the host of the first --origin).")] = None,
    origin: Annotated[list[str] | None, typer.Option(
        help="An allowed WebAuthn origin (repeatable; default: the receipt's own).")] = None,
    live_url: Annotated[str | None, typer.Option(
        "--live", help="The vault's base URL: also read its ledger for what happened to "
                       "the grant since the receipt was made (the grant's state now).")
    ] = None,
    api_key: Annotated[str | None, typer.Option(
        "--api-key", envvar="VAULT_AUDITOR_API_KEY",
        help="Auditor API key, for --live on a vault whose ledger is not public.")] = None,
    witness: WitnessOption = None,
    quorum: QuorumOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Verify a consent receipt offline: the checkpoint signature, each entry's inclusion
    proof, the terms hash and every passkey signature. A receipt shows the grant as it was
    when it was made; with --live URL, the vault's ledger says what became of it since.
    Exit 0 only when everything verifies, 2 when there is nothing to check (no such file,
    not a receipt) or the vault cannot be read."""
    try:
        pinned = Verifier.parse(key) if key else None
        policy = WitnessPolicy.from_options(witness, quorum)
        data, doc = _read_receipt(file)
        if origin and rp_id is None:
            rp_id = relying_party_of(origin[0])[0]
    except (LedgerError, AuditorError) as exc:
        raise _usage(str(exc), as_json) from None
    report = verify_receipt(data, expected_key=pinned, expected_rp_id=rp_id,
                            expected_origins=origin or None)
    problems = [*report.problems, *_disagreements(doc, pinned, rp_id, origin),
                *_witness_problems(doc, policy)]
    verified, live = not problems, None
    if live_url is not None and verified:
        try:
            with _client(live_url, api_key, policy) as client:
                live = grant_now(client, report)
        except WitnessRefusal as exc:
            raise _refused(exc, as_json) from None
        except AuditorError as exc:
            raise _usage(str(exc), as_json) from None
        problems += live.problems
    ok = not problems
    own_rp, own_origins = _receipt_rp(doc)
    used_rp = rp_id if rp_id is not None else own_rp
    used_origins = origin or own_origins
    cp = report.checkpoint
    if as_json:
        _print_json({
            "ok": ok, "record_id": report.record_id, "status": report.status,
            "snapshot": _snapshot_json(report),
            "live": None if live is None or live_url is None else _live_json(live, live_url),
            "checkpoint": None if cp is None else {
                "origin": cp.origin, "size": cp.size,
                "root": base64.b64encode(cp.root).decode()},
            "key": None if report.key is None else str(report.key),
            "key_pinned": report.key_pinned, "rp_id": used_rp, "origins": used_origins,
            "rp_pinned": rp_id is not None and bool(origin),
            "entries_included": report.entries_included,
            "signatures_verified": report.signatures_verified,
            "entries_opened": report.entries_opened,
            "delegated": report.delegated,
            "problems": [{"check": p.check, "index": p.index, "message": p.message}
                         for p in problems]})
        raise typer.Exit(0 if ok else 1)
    if ok:
        _out(f"[green]✓[/] the consent receipt for {escape(str(report.record_id))} verifies")
    else:
        _out(f"[red]✗ the consent receipt does not verify[/] "
             f"({counted(len(problems), 'problem')}):")
        for p in problems:
            _out(f"  [red]✗[/] {escape(str(p))}")
    if verified:
        _say_snapshot(report, live)
    elif live_url is not None:
        _out("  not checked with --live: only a receipt that verifies can be followed in "
             "the ledger")
    if cp is not None:
        _out(f"  the receipt's checkpoint: {counted(cp.size, 'entry')} of {cp.origin}, "
             "signature verified")
    if report.key is not None:
        how = ("pinned with --key" if report.key_pinned else
               "[yellow]taken from the receipt itself[/]: pin it with --key")
        _out(f"  key: {report.key} ({how})")
    _out(f"  entries: {report.entries_included} proved included in the checkpoint's "
         "tree (RFC 9162 inclusion proofs)")
    if report.entries_opened:
        _out(f"  openings: {report.entries_opened} sealed "
             f"{'entry' if report.entries_opened == 1 else 'entries'} opened, each checked "
             "against its commitment")
    rp_how = ("pinned" if rp_id is not None and origin else
              "[yellow]taken from the receipt itself[/]: pin them with --rp-id and --origin")
    if used_rp is None:
        _out("  passkey signatures: none checked (no relying party given, and the receipt "
             "names none)")
    else:
        _out(f"  passkey signatures: {report.signatures_verified} verified for RP ID "
             f"{escape(repr(used_rp))} and origins {escape(repr(used_origins))} ({rp_how})")
    if report.delegated:  # acting for others (ARCHITECTURE §9)
        _out(f"  delegates: {counted(report.delegated, 'step')} taken by someone acting "
             "for the citizen, each under a delegation the receipt holds, granted before "
             "it with that action, signed by both people")
    if ok:
        _out("  the terms hash, and the receipt's record, subject, status, events, purpose, "
             "data, validity, retention, access and justification agree with the entries "
             "(its descriptive text, such as labels and the notice, is not evidence)")
    raise typer.Exit(0 if ok else 1)


@app.command()
def transparency(
    url: Annotated[str, typer.Argument(help="The vault's base URL")],
    key: Annotated[str | None, typer.Option(
        help="The ledger's verifier key (name+id+key). Pin it: without it the vault's own "
             "/ledger/key is trusted.")] = None,
    api_key: Annotated[str | None, typer.Option(
        "--api-key", envvar="VAULT_AUDITOR_API_KEY",
        help="Auditor API key, if the vault's ledger is not public.")] = None,
    witness: WitnessOption = None,
    quorum: QuorumOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Recount every figure of the vault's /transparency.json from the public ledger
    entries it counts, held against their signed checkpoint (with --witness, only if it
    has its quorum of cosignatures), with the same suppression rule (a hidden figure
    must have the range the recount gives). Exit 0 all agree, 1 a figure differs (each
    is named) or the entries or checkpoint do not hold, 2 usage or network errors."""
    try:
        pinned = Verifier.parse(key) if key else None
        policy = WitnessPolicy.from_options(witness, quorum)
        doc = fetch_report(url)
        with LedgerClient(url, api_key=api_key) as client:
            result = check_transparency(client, doc, expected_key=pinned,
                                        witness_problem=policy.problem if policy else None)
    except (AuditorError, LedgerError) as exc:
        raise _usage(str(exc), as_json) from None
    if as_json:
        _print_json(result.to_json())
    else:
        for style, text in transparency_text(result):
            out.print(text, style=style or None, markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(0 if result.ok else 1)


def main() -> None:
    app()
