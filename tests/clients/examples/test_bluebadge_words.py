"""The words citizens read about the Blue Badge example: its registered description is
written for them (the consent screen shows it under "Who"), not for developers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from clients.examples import demo


def test_the_app_is_registered_with_a_description_for_citizens(tmp_path: Path) -> None:
    calls: list[list[str]] = []

    def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        answer = {"client_id": "svc_example", "webhook_secret": "whsec_example"}
        return subprocess.CompletedProcess(argv, 0, json.dumps(answer), "")

    demo.register(["vault"], tmp_path / "data", app_url="http://localhost:8001", run=run)
    [add] = [argv for argv in calls if argv[1:3] == ["service", "add"]]
    description = add[add.index("--description") + 1]
    assert description == demo.SERVICE_DESCRIPTION
    # Addressed to the citizen deciding, in their words: no SDK, no app, no client.
    assert "you" in description.lower().split()
    assert "Blue Badge" in description
    words = description.lower()
    for jargon in ("sdk", "api", "developer", "yes/no", "endpoint"):
        assert jargon not in words, jargon
    for word in ("app", "client"):
        assert word not in words.replace(".", " ").replace(",", " ").split(), word
