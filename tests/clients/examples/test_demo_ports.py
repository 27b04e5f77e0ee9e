"""`make run PORT=... APP_PORT=...` reaches the launcher, and the launcher starts the vault,
the Blue Badge example and the city's services on their ports (issue 11, a newcomer's
friction; issue 12 §6). Nothing is started: `make -n` only prints, and the children are
stand-ins."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from clients.examples import demo
from clients.examples.city import SPECS

ROOT = Path(__file__).resolve().parents[3]


def _make_run(*assignments: str) -> list[str]:
    """The launcher's arguments in what `make run` would run (printed, not run)."""
    out = subprocess.run(["make", "-n", "-s", "-C", str(ROOT), "run", *assignments],
                         capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if "-m clients.examples.demo" in ln)
    words = shlex.split(line)
    return words[words.index("clients.examples.demo") + 1:]


def test_make_run_passes_port_and_app_port() -> None:
    argv = _make_run("PORT=9100", "APP_PORT=9101")
    assert argv == ["--port", "9100", "--app-port", "9101"]
    args = demo.parse_args(argv)
    assert (args.port, args.app_port) == (9100, 9101)
    argv = _make_run("CITY_PORT=9110")
    assert argv == ["--city-port", "9110"]
    assert demo.parse_args(argv).city_port == 9110
    argv = _make_run("WITNESS_PORT=9120")
    assert argv == ["--witness-port", "9120"]
    assert demo.parse_args(argv).witness_port == 9120


def test_without_them_the_launcher_keeps_its_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PORT", raising=False)
    monkeypatch.delenv("APP_PORT", raising=False)
    monkeypatch.delenv("VAULT_PORT", raising=False)
    argv = _make_run()
    assert argv == []
    args = demo.parse_args(argv)
    assert (args.port, args.app_port, args.city_port) == (8000, 8001, 8002)
    monkeypatch.setenv("VAULT_PORT", "8100")
    assert demo.parse_args([]).port == 8100


@pytest.mark.parametrize(("argv", "message"), [
    (["--port", "eighty"], "'eighty' is not a port number"),
    (["--app-port", "70000"], "70000 is not a port"),
    (["--port", "9000", "--app-port", "9000"], "cannot share port 9000"),
    (["--port", "8004"], "the vault cannot use port 8004: the city services use ports 8002 "
                         "to 8007"),
    (["--app-port", "9001", "--city-port", "9000"],
     "the Blue Badge example cannot use port 9001"),
    (["--city-port", "65534"], "the city services need ports 65534 to 65539"),
    (["--witness-port", "8001"], "the witnesses need ports 8001 to 8002"),
])
def test_bad_ports_are_refused_clearly(argv: list[str], message: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        demo.parse_args(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


class _Child:
    def __init__(self, argv: list[str], **kw: Any) -> None:
        self.argv = argv
        self.env: dict[str, str] | None = kw.get("env")
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode

    def terminate(self) -> None:
        self.returncode = 0

    def wait(self, timeout: float | None = None) -> int:
        return 0

    def kill(self) -> None:
        self.returncode = -9


def test_the_launcher_starts_them_all_on_the_ports_given(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    started: list[list[str]] = []
    children: list[_Child] = []
    asked: list[str] = []

    def popen(argv: list[str], **kw: Any) -> _Child:
        started.append(argv)
        children.append(_Child(argv, **kw))
        return children[-1]

    registered: dict[str, Any] = {}

    def register(vault: Any, data_dir: Path, *, app_url: str, database: Any = None
                 ) -> demo.Registration:
        registered["app_url"] = app_url
        return demo.Registration("svc_test", None, new=True)

    def register_city(vault: Any, data_dir: Path, *, urls: dict[str, str],
                      database: Any = None) -> dict[str, demo.Registration]:
        registered["city"] = urls
        return {slug: demo.Registration(f"svc_{slug}", None, new=False) for slug in urls}

    monkeypatch.setattr(demo.subprocess, "Popen", popen)
    monkeypatch.setattr(demo, "register", register)
    monkeypatch.setattr(demo, "register_city", register_city)
    monkeypatch.setattr(demo.signal, "signal", lambda *a: None)
    monkeypatch.setattr(demo, "_stop", lambda children, grace=10.0: None)

    everyone = 2 + len(SPECS)

    def healthy(url: str, child: Any, *, what: str, stop: Any, timeout: float = 60) -> bool:
        asked.append(url)
        if len(asked) == everyone:
            stop.set()  # all are up: stop, as Ctrl-C would
        return True

    monkeypatch.setattr(demo, "wait_until_healthy", healthy)
    monkeypatch.setattr(demo, "ledger_key", lambda url: "vault.test/ledger+00000000+AQ==")
    monkeypatch.delenv("VAULT_WITNESSES", raising=False)
    everyone += demo.WITNESSES
    assert demo.main(["--port", "9100", "--app-port", "9101", "--city-port", "9110",
                      "--witness-port", "9120", "--data-dir", str(tmp_path)]) == 0

    vault, w1, w2, app, town = started
    # Two witnesses on their ports, each told the vault's ledger key, and the vault told
    # of both with a quorum of two (issue 13 §3: make run with two local witnesses).
    for w, port in ((w1, "9120"), (w2, "9121")):
        assert w[w.index("-m") + 1:w.index("-m") + 3] == ["ledger.witness", "serve"]
        assert w[w.index("--port") + 1] == port
        assert w[w.index("--log") + 1] == "vault.test/ledger+00000000+AQ=="
    env = children[0].env
    assert env is not None and env["VAULT_WITNESS_QUORUM"] == "2"
    pairs = env["VAULT_WITNESSES"].split(";")
    assert [p.split()[1] for p in pairs] == ["http://127.0.0.1:9120", "http://127.0.0.1:9121"]
    # The keys are made once and kept: a second launch names the same witnesses.
    assert [w.vkey for w in demo.demo_witnesses(tmp_path, 9120)] == [p.split()[0] for p in pairs]
    assert oct((tmp_path / "witnesses" / "w1.key").stat().st_mode & 0o777) == "0o600"
    assert vault[vault.index("--port") + 1] == "9100" and "serve" in vault
    assert app[app.index("--port") + 1] == "9101"
    assert app[app.index("--vault") + 1] == "http://localhost:9100"
    assert registered["app_url"] == "http://localhost:9101"
    assert town[town.index("-m") + 1] == "clients.examples.city"
    assert town[town.index("--port") + 1] == "9110"
    assert town[town.index("--vault") + 1] == "http://localhost:9100"
    assert registered["city"] == {"agency": "http://localhost:9110",
                                  "register": "http://localhost:9111",
                                  "counciltax": "http://localhost:9112",
                                  "wearable": "http://localhost:9113",
                                  "gp": "http://localhost:9114",
                                  "school": "http://localhost:9115"}
    assert asked == ["http://127.0.0.1:9100", "http://127.0.0.1:9120", "http://127.0.0.1:9121",
                     "http://127.0.0.1:9101",
                     "http://127.0.0.1:9110", "http://127.0.0.1:9111",
                     "http://127.0.0.1:9112",
                     "http://127.0.0.1:9113", "http://127.0.0.1:9114",
                     "http://127.0.0.1:9115"]
    out = capsys.readouterr().out
    for line in ("Council Tax team:   http://localhost:9112",
                 "GP practice:        http://localhost:9114",
                 "School (meals):     http://localhost:9115"):
        assert line in out, out
