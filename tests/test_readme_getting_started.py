"""The README's "Getting started as a service" runs as written.

Its marked blocks (`<!-- getting-started: file NAME -->` saves the block as NAME,
`<!-- getting-started: sh -->` runs it) run in order, in a folder laid out like the
checkout (`.venv`, and the vault's `vault-data/`), against a live vault over a real
socket; only the vault's address is changed, to the free port it runs on. The citizen's
part (open the printed link, approve with a passkey, paste back the address the browser
was sent to) is played by a software passkey over HTTP. If the README drifts from the SDK,
the CLI or the vault, this fails.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from livevault import LiveVault, serve
from support.livewallet import approve, sign_up
from support.webwallet import Browser

from clients.service import Grant
from ledger.entry import Entry, parse_entry
from ledger.sqlstore import SqlLedger
from vault.config import Settings

REPO = Path(__file__).resolve().parents[1]
SECTION = "### Getting started as a service"
_HEADING = re.compile(r"^#{1,3} ", re.M)
_STEP = re.compile(r"<!-- getting-started: (sh|file ([\w.-]+)) -->\n```\w+\n(.*?)```", re.S)
_LINK = re.compile(r"(http://localhost:\d+/oauth/authorize\?\S+)")
README_URL = "http://localhost:8000"


@dataclass(frozen=True)
class Step:
    file: str | None  # the file to save the block as; None: run it with bash
    text: str


def steps(readme: str) -> list[Step]:
    start = readme.index(SECTION)
    end = _HEADING.search(readme, start + len(SECTION))
    section = readme[start:end.start() if end else len(readme)]
    found = [Step(m.group(2), m.group(3)) for m in _STEP.finditer(section)]
    assert section.count("```") == 2 * len(found), "a code block of the section is unmarked"
    return found


def run(script: str, cwd: Path, env: dict[str, str], citizen: Browser) -> str:
    """Run `script` with bash; if it prints an authorization link, the citizen approves
    and the address the browser was sent back to is typed in. Its output."""
    errors = cwd / ".stderr"
    with errors.open("w") as stderr:
        proc = subprocess.Popen(["bash", "-eu", "-o", "pipefail", "-c", script], cwd=cwd,
                                env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=stderr, text=True)
        watchdog = threading.Timer(120, proc.kill)
        watchdog.start()
        try:
            assert proc.stdin is not None and proc.stdout is not None
            lines = []
            for line in proc.stdout:
                lines.append(line)
                link = _LINK.search(line)
                if link:
                    proc.stdin.write(approve(citizen, link.group(1)) + "\n")
                    proc.stdin.flush()
            proc.stdin.close()
            code = proc.wait()
        finally:
            watchdog.cancel()
    output = "".join(lines)
    assert code == 0, f"{script}\nexited {code}\n{output}\n{errors.read_text()}"
    return output


def test_the_getting_started_section_runs_as_written(tmp_path: Path) -> None:
    blocks = steps((REPO / "README.md").read_text(encoding="utf-8"))
    assert [(b.file or "sh") for b in blocks] == [
        "make_key.py", "sh", "sh", "first_read.py", "sh"]
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / ".venv").symlink_to(REPO / ".venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    env["PYTHONUNBUFFERED"] = "1"  # a pipe, not a terminal: print before input() waits
    with serve(Settings(data_dir=checkout / "vault-data")) as vault:
        citizen = sign_up(vault)
        outputs = []
        for block in blocks:
            text = block.text.replace(README_URL, vault.url)
            if block.file:
                (checkout / block.file).write_text(text, encoding="utf-8")
            else:
                outputs.append(run(text, checkout, env, citizen))
        read_entry = _entry(vault, int(outputs[-1].rsplit(" ", 1)[1]))

    key = checkout / "service-key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    client_id = json.loads((checkout / "service.json").read_text())["client_id"]
    assert client_id.startswith("svc_") and client_id in outputs[1]
    for code in ("eligibility_assessment", "address.home", "age_over_65"):  # the catalog
        assert code in outputs[1]
    said = outputs[-1].splitlines()
    assert said[0].startswith("Open this link in your browser: http://localhost:")
    assert said[1:3] == ["Then paste the address your browser was sent back to: "
                         "Postcode: SW1Y 4JH", "Derived answers: {'age_over_65': True}"]
    assert read_entry.kind == "data.accessed"
    grant = Grant.from_json(json.loads((checkout / "grant.json").read_text()))
    assert read_entry.body["grant_id"] == grant.grant_id
    assert read_entry.body["service_id"] == client_id


def _entry(vault: LiveVault, index: int) -> Entry:
    assert vault.app is not None
    with vault.app.state.vault.ctx.engine.connect() as conn:
        [data] = SqlLedger(conn).entries(index, 1)
    return parse_entry(data)
