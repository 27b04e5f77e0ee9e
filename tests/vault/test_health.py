from __future__ import annotations

from fastapi.testclient import TestClient


def test_readyz_reports_the_schema(client: TestClient) -> None:
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"


def test_metrics_in_prometheus_format(client: TestClient) -> None:
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    for name in ("vault_ledger_entries", "vault_ledger_checkpoint_size", "vault_citizens",
                 "vault_services", "vault_grants"):
        assert f"# TYPE {name} gauge" in text


def test_demo_is_a_living_system(tmp_path: object) -> None:
    from pathlib import Path

    from vault.app import create_app
    from vault.config import Settings

    s = Settings(data_dir=Path(str(tmp_path)), ledger_public=True, demo=True)
    with TestClient(create_app(s)) as c:
        text = c.get("/metrics").text
    assert 'vault_grants{state="approved"} 1.0' in text
    assert 'vault_grants{state="paused"} 1.0' in text
    assert 'vault_grants{state="requested"} 1.0' in text
    assert 'vault_grants{state="exhausted"} 1.0' in text
    assert 'vault_grants{state="denied"} 1.0' in text
    assert "vault_services 5.0" in text and "vault_citizens 1.0" in text
