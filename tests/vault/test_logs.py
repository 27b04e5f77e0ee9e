"""Logs are JSON lines of ids and codes: no personal data, whatever happens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from vault.app import create_app
from vault.config import Settings

DEMO_VALUES = ["Sam", "Rivers", "sam.rivers@example.org", "7700900123", "1955-04-02",
               "Willow Lane", "RV1 2AB", "Alex", "2016-06-15"]


def test_logs_hold_no_personal_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = Settings(data_dir=tmp_path, demo=True, ledger_public=True)
    with TestClient(create_app(s)) as c:
        for path in ("/healthz", "/readyz", "/metrics", "/ledger/entries?limit=50",
                     "/ledger/entries?start=-1", "/nowhere"):
            c.get(path)
    logged = capsys.readouterr().err
    lines = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
    assert any(e["message"] == "demo loaded" for e in lines)
    assert any(e.get("path") == "/ledger/entries" for e in lines)
    assert not any("?" in str(e.get("path", "")) for e in lines)  # never the query string
    for value in DEMO_VALUES:
        assert value not in logged, f"{value!r} appears in the logs"
