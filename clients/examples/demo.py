"""`python -m clients.examples.demo` (what `make run` runs): the vault's demo, the Blue
Badge example service and the city's seed scenarios (clients.examples.city), side by side.

1. `vault serve --demo` in a child process, until /healthz answers;
2. the Blue Badge app registered as an operator would, with the `vault` command line:
   its own P-256 key (`<data-dir>/bluebadge/service-key.pem`, 0600), the public JWKS,
   `vault service add ... --json`; client_id and webhook secret kept in
   `<data-dir>/bluebadge/client.json` (0600) and reused while the vault still knows them;
3. `python -m clients.examples.bluebadge` in a second child;
4. the city's services registered the same way (`<data-dir>/city/<service>/`; issuers
   with `--issues`, their JWKS naming the `kid` they sign records with), and
   `python -m clients.examples.city` in a third child serving them all, from --city-port
   (the school of the free-school-meals scenario among them, at --city-port + 5);
5. two witnesses (`python -m ledger.witness serve`, from --witness-port), their keys made
   on the first run in `<data-dir>/witnesses/` (0600) and kept after; the vault is told
   of both (VAULT_WITNESSES) and publishes a checkpoint only when both cosigned it
   (VAULT_WITNESS_QUORUM=2). They start once the vault serves its ledger key, which they
   need; until then the vault waits for its quorum;
6. Ctrl-C or SIGTERM stops them all (each in a session of its own, so only we get the
   terminal's Ctrl-C, and each gets one SIGTERM and time for a clean shutdown).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from clients.examples import city
from clients.examples.bluebadge.config import CLIENT_FILE, JWKS_FILE, KEY_FILE, app_dir
from clients.examples.city import config as city_config
from clients.service import ServiceKey
from ledger.cosignature import WitnessSigner

__all__ = ["SERVICE_DESCRIPTION", "SERVICE_NAME", "LaunchError", "Registration", "main",
           "parse_args", "register", "register_city", "vault_command"]

SERVICE_NAME = "Blue Badge team (example app)"
#: What the citizen reads about the service on the vault's consent screen ("Who"): words
#: for them, not for developers.
SERVICE_DESCRIPTION = ("Decides whether you can have a Blue Badge, so you can park closer "
                       "to where you need to go. This is an example service: nothing you "
                       "share with it is sent anywhere else.")
Runner = Callable[[list[str]], "subprocess.CompletedProcess[str]"]


class LaunchError(Exception):
    """The vault or the example app could not be started or registered."""


@dataclass(frozen=True)
class Registration:
    client_id: str
    webhook_secret: str | None
    #: True when this call registered the app (first run, or the vault forgot it).
    new: bool


def vault_command() -> list[str]:
    """The `vault` script of this same environment (so `make run` uses .venv's)."""
    beside = Path(sys.executable).parent / "vault"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("vault")
    return [found] if found else [sys.executable, "-c", "from vault.cli import main; main()"]


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603


def _write_private(path: Path, data: bytes) -> None:
    """Create `path` with mode 0600 from the start (never readable by others)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def _service_key(folder: Path) -> ServiceKey:
    path = folder / KEY_FILE
    if path.is_file():
        return ServiceKey.from_file(path)
    key = ServiceKey.generate()
    _write_private(path, key.private_pem())
    return key


def _known(doc: Any, wanted: dict[str, Any]) -> str | None:
    """The stored client_id, if it was registered with what we would register now."""
    if not isinstance(doc, dict) or not isinstance(doc.get("client_id"), str):
        return None
    return doc["client_id"] if all(doc.get(k) == v for k, v in wanted.items()) else None


def _enrol(vault: Sequence[str], data_dir: Path, folder: Path, *, add: list[str],
           jwks: dict[str, Any], wanted: dict[str, Any], database: str | None,
           run: Runner) -> Registration:
    """Register the app whose files are in `folder` with `vault service add *add`, once.

    Later calls reuse `client.json` if the vault still knows its client_id (asking it for
    the webhook secret, which also picks up a rotated app secret) and what it was
    registered with (`wanted`) is unchanged; otherwise they register again.
    """
    _write_private(folder / JWKS_FILE,  # public, but the data dir's files are all 0600
                   (json.dumps(jwks, indent=2) + "\n").encode())
    where = ["--data-dir", str(data_dir)] + (["--database", database] if database else [])
    client_file = folder / CLIENT_FILE
    try:
        stored = json.loads(client_file.read_text()) if client_file.is_file() else None
    except ValueError:
        stored = None
    client_id = _known(stored, wanted)
    new = False
    if client_id is not None:
        got = run([*vault, "service", "webhook-secret", client_id, *where])
        secret = got.stdout.strip() if got.returncode == 0 else None
        if not secret and "no service" not in got.stderr:  # not "unknown": a real failure
            raise LaunchError(f"vault service webhook-secret failed: "
                              f"{(got.stderr or got.stdout).strip()}")
        client_id = client_id if secret else None  # the vault no longer knows it
    if client_id is None:
        got = run([*vault, "service", "add", *add, "--jwks-file", str(folder / JWKS_FILE),
                   "--json", *where])
        if got.returncode != 0:
            raise LaunchError(f"vault service add failed: {(got.stderr or got.stdout).strip()}")
        try:
            answer = json.loads(got.stdout)
            client_id, secret = str(answer["client_id"]), answer.get("webhook_secret")
        except (ValueError, KeyError, TypeError):
            raise LaunchError(f"vault service add printed no JSON: {got.stdout!r}") from None
        new = True
    _write_private(client_file, (json.dumps(
        {"client_id": client_id, "webhook_secret": secret, **wanted}, indent=2) + "\n").encode())
    return Registration(client_id, secret, new)


def register(vault: Sequence[str], data_dir: Path, *, app_url: str,
             database: str | None = None, run: Runner = _run) -> Registration:
    """Register the Blue Badge app with the vault at `data_dir`, once (`_enrol`): its key,
    redirect URI and webhook URL."""
    folder = app_dir(data_dir)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = _service_key(folder)
    app_url = app_url.rstrip("/")
    redirect_uri, webhook_url = f"{app_url}/callback", f"{app_url}/webhooks/vault"
    wanted: dict[str, Any] = {"jwk": key.public_jwk(), "redirect_uri": redirect_uri,
                              "webhook_url": webhook_url}
    add = ["--name", SERVICE_NAME, "--description", SERVICE_DESCRIPTION,
           "--redirect-uri", redirect_uri, "--privacy-notice-url", f"{app_url}/privacy",
           "--purpose", "eligibility_assessment",
           "--category", "identity.name", "--category", "address.home",
           "--derived", "age_over_65", "--derived", "receives:attendance_allowance",
           "--max-days", "90", "--webhook-url", webhook_url]
    return _enrol(vault, data_dir, folder, add=add, jwks={"keys": [key.public_jwk()]},
                  wanted=wanted, database=database, run=run)


def register_city(vault: Sequence[str], data_dir: Path, *, urls: Mapping[str, str],
                  database: str | None = None, run: Runner = _run
                  ) -> dict[str, Registration]:
    """Register each city service (`clients.examples.city.SPECS`) served at `urls[slug]`,
    once (`_enrol`). An issuer's JWKS names its key by the `kid` it signs records with."""
    done = {}
    for spec in city.SPECS:
        folder = city_config.service_dir(data_dir, spec.slug)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = _service_key(folder)
        add = spec.vault_args(urls[spec.slug].rstrip("/"))
        jwks = key.public_jwks()
        try:
            done[spec.slug] = _enrol(vault, data_dir, folder, add=add, jwks=jwks,
                                     wanted={"jwks": jwks, "add": add}, database=database,
                                     run=run)
        except LaunchError as exc:
            if spec.source_path is None or "already held at source" not in str(exc):
                raise
            # The vault lets one source hold a category, for good: a register moved to
            # another URL cannot take it over.
            raise LaunchError(
                f"{spec.name} was registered at another URL before, and the vault lets "
                f"one source hold {', '.join(spec.issues)}: start again with the "
                "earlier --city-port, or with a fresh --data-dir") from None
    return done


#: The demo's witnesses: two, and the vault needs both (ARCHITECTURE §10).
WITNESSES = 2


@dataclass(frozen=True)
class DemoWitness:
    key_file: Path
    vkey: str
    port: int

    def url(self, host: str) -> str:
        return _local(host, self.port)


def demo_witnesses(data_dir: Path, first_port: int) -> list[DemoWitness]:
    """The demo's witness keys, made on the first run and read after (so what a witness
    cosigned stays its own: a new key would forget nothing, but no one would trust it)."""
    folder = data_dir / "witnesses"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    found = []
    for i in range(WITNESSES):
        path = folder / f"w{i + 1}.key"
        if not path.is_file():
            signer = WitnessSigner.generate(f"localhost/demo-witness-{i + 1}")
            _write_private(path, (str(signer) + "\n").encode())
        vkey = str(WitnessSigner.parse(path.read_text()).verifier())
        found.append(DemoWitness(path, vkey, first_port + i))
    return found


def witness_env(witnesses: Sequence[DemoWitness], host: str) -> dict[str, str]:
    """The vault's settings for the demo's witnesses, unless the caller set their own."""
    if "VAULT_WITNESSES" in os.environ:
        return {}
    return {"VAULT_WITNESSES": ";".join(f"{w.vkey} {w.url(host)}" for w in witnesses),
            "VAULT_WITNESS_QUORUM": str(len(witnesses))}


def ledger_key(url: str) -> str:
    """The vault's ledger verifier key, which its witnesses must know."""
    try:
        r = httpx.get(f"{url}/ledger/key", timeout=5.0)
    except httpx.HTTPError as exc:
        raise LaunchError(f"cannot read the vault's ledger key: {exc}") from None
    if r.status_code != 200:
        raise LaunchError(f"the vault's ledger key: {url}/ledger/key answered {r.status_code}")
    return r.text.strip()


def _local(host: str, port: int) -> str:
    """A URL this machine can reach a server listening on `host` at."""
    if host in ("", "0.0.0.0"):  # noqa: S104 (a listening address, only compared)
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def wait_until_healthy(url: str, child: subprocess.Popen[bytes], *, what: str,
                       stop: threading.Event, timeout: float = 60.0) -> bool:
    """True once `url`/healthz answers; False if `stop` is set first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stop.is_set():
            return False
        if child.poll() is not None:
            raise LaunchError(f"{what} stopped (exit code {child.returncode})")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        stop.wait(0.2)
    raise LaunchError(f"{what} did not answer at {url}/healthz within {timeout:.0f} s")


def _stop(children: list[subprocess.Popen[bytes]], *, grace: float = 10.0) -> None:
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _env_default(name: str, default: str) -> str:
    return os.environ.get(f"VAULT_{name}", default)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (1 to 65535)")
    return port


#: Ports the city services take from --city-port on.
_CITY_SPAN = 1 + max(spec.port_offset for spec in city.SPECS)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (`make run PORT=... APP_PORT=...` passes --port and --app-port);
    defaults from VAULT_HOST, VAULT_PORT, VAULT_PUBLIC_URL and VAULT_DATA_DIR."""
    parser = argparse.ArgumentParser(
        prog="python -m clients.examples.demo",
        description="Run the vault's demo, the Blue Badge example service and the city's "
                    "example services together.")
    parser.add_argument("--host", default=_env_default("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=_port, default=_env_default("PORT", "8000"),
                        help="Port of the vault (default 8000; make run PORT=...).")
    parser.add_argument("--public-url", default=os.environ.get("VAULT_PUBLIC_URL"))
    parser.add_argument("--database", default=None, help="Database URL (default: SQLite).")
    parser.add_argument("--data-dir", type=Path,
                        default=Path(_env_default("DATA_DIR", "vault-data")))
    parser.add_argument("--app-port", type=_port, default="8001",
                        help="Port of the Blue Badge example (default 8001; "
                             "make run APP_PORT=...).")
    parser.add_argument("--city-port", type=_port, default="8002",
                        help="Port of the first city service (default 8002; the others "
                             f"follow it, up to {8002 + _CITY_SPAN - 1}).")
    parser.add_argument("--witness-port", type=_port, default="8010",
                        help=f"Port of the first of the {WITNESSES} witnesses (default "
                             f"8010, then {8010 + WITNESSES - 1}).")
    args = parser.parse_args(argv)
    if args.port == args.app_port:
        parser.error(f"the vault and the Blue Badge example cannot share port {args.port}")
    city_ports = range(args.city_port, args.city_port + _CITY_SPAN)
    if args.city_port + _CITY_SPAN - 1 > 65535:
        parser.error(f"the city services need ports {city_ports.start} to "
                     f"{city_ports.stop - 1}")
    for what, port in (("the vault", args.port), ("the Blue Badge example", args.app_port)):
        if port in city_ports:
            parser.error(f"{what} cannot use port {port}: the city services use ports "
                         f"{city_ports.start} to {city_ports.stop - 1}")
    witness_ports = range(args.witness_port, args.witness_port + WITNESSES)
    taken = {args.port, args.app_port, *city_ports}
    if witness_ports.stop - 1 > 65535 or taken & set(witness_ports):
        parser.error(f"the witnesses need ports {witness_ports.start} to "
                     f"{witness_ports.stop - 1}, free of the vault's and the examples'")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    vault_url = (args.public_url or f"http://localhost:{args.port}").rstrip("/")
    app_url = f"http://localhost:{args.app_port}"
    vault = vault_command()

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    children: dict[str, subprocess.Popen[bytes]] = {}
    where = ["--data-dir", str(args.data_dir)]
    where += ["--database", args.database] if args.database else []
    where += ["--public-url", args.public_url] if args.public_url else []
    try:
        witnesses = demo_witnesses(args.data_dir, args.witness_port)
        children["the vault"] = subprocess.Popen(  # noqa: S603
            [*vault, "serve", "--demo", "--host", args.host, "--port", str(args.port),
             *where], start_new_session=True,
            env={**os.environ, **witness_env(witnesses, args.host)})
        if not wait_until_healthy(_local(args.host, args.port), children["the vault"],
                                  what="the vault", stop=stop):
            return 0
        log_key = ledger_key(_local(args.host, args.port))
        for i, w in enumerate(witnesses, 1):
            children[f"witness {i}"] = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "ledger.witness", "serve", "--key", str(w.key_file),
                 "--log", log_key, "--host", args.host, "--port", str(w.port)],
                start_new_session=True)
            if not wait_until_healthy(w.url(args.host), children[f"witness {i}"],
                                      what=f"witness {i}", stop=stop):
                return 0
        reg = register(vault, args.data_dir, app_url=app_url, database=args.database)
        print(f"Blue Badge example: {'registered' if reg.new else 'known'} to the vault as "
              f"{reg.client_id}", flush=True)
        if stop.is_set():
            return 0
        app = children["the Blue Badge example"] = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "clients.examples.bluebadge", "--vault", vault_url,
             "--host", args.host, "--port", str(args.app_port),
             "--data-dir", str(args.data_dir)], start_new_session=True)
        if not wait_until_healthy(_local(args.host, args.app_port), app,
                                  what="the Blue Badge example", stop=stop):
            return 0
        if stop.is_set():
            return 0
        urls = city_config.service_urls(args.city_port)
        known = register_city(vault, args.data_dir, urls=urls, database=args.database)
        print("City services: " + ", ".join(
            f"{slug} {'registered' if r.new else 'known'} as {r.client_id}"
            for slug, r in known.items()), flush=True)
        if stop.is_set():
            return 0
        town = children["the city services"] = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "clients.examples.city", "--vault", vault_url,
             "--host", args.host, "--port", str(args.city_port),
             "--data-dir", str(args.data_dir)], start_new_session=True)
        for spec in city.SPECS:
            if not wait_until_healthy(_local(args.host, args.city_port + spec.port_offset),
                                      town, what=f"the {spec.slug} example", stop=stop):
                return 0
        print(f"\n  Wallet:             {vault_url}/wallet\n"
              f"  Blue Badge example: {app_url}\n"
              f"  Benefits Agency:    {urls['agency']}\n"
              f"  Electoral register: {urls['register']}\n"
              f"  Council Tax team:   {urls['counciltax']}\n"
              f"  Heart monitor:      {urls['wearable']}\n"
              f"  GP practice:        {urls['gp']}\n"
              f"  School (meals):     {urls['school']}\n"
              f"  Witnesses:          "
              f"{', '.join(w.url(args.host) for w in witnesses)} (the vault needs both)\n\n"
              "Sign up in the wallet first, then apply for a Blue Badge, or try the city's "
              "scenarios. Ctrl-C stops them all.", flush=True)
        while not stop.wait(0.5):
            for what, child in children.items():
                if child.poll() is not None:
                    print(f"error: {what} stopped (exit code {child.returncode})",
                          file=sys.stderr)
                    return 1
        return 0
    except LaunchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        _stop(list(children.values()))


if __name__ == "__main__":
    sys.exit(main())
