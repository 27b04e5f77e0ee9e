"""`vault citizen write` of a series (ARCHITECTURE §8 "Series"): the value is one batch of
items, appended by the series' own append (its checks, its `record.written` with
"items"); a bad batch is a clear error, never a traceback."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from support.ledgerview import read_export
from typer.testing import CliRunner

from vault.cli import app

runner = CliRunner()
OBS = "health.observations"


def run(*args: str, data_dir: Path, code: int = 0) -> str:
    r = runner.invoke(app, [*args, "--data-dir", str(data_dir)], env={"COLUMNS": "200"})
    assert r.exit_code == code, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return " ".join(r.output.split())


def reading(at: datetime) -> dict[str, object]:
    return {"kind": "heart_rate", "value": 70, "unit": "bpm",
            "at": at.isoformat().replace("+00:00", "Z")}


def test_the_operator_writes_a_series_as_a_batch(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run("db", "upgrade", data_dir=data)
    citizen = run("citizen", "enrol", data_dir=data).strip()
    hour_ago = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    batch = json.dumps([reading(hour_ago), reading(hour_ago)])
    assert f"{OBS} version 1 written" in run("citizen", "write", citizen, OBS, batch,
                                             data_dir=data)
    out = tmp_path / "ledger.ndjson"
    openings = tmp_path / "openings.ndjson"
    run("ledger", "export", "--out", str(out), "--openings", str(openings), data_dir=data)
    [written] = [e["body"] for e in read_export(out, openings) if e["kind"] == "record.written"]
    assert written["items"] == 2 and written["version"] == 1
    # A reading from the future, or a value that is no batch: refused, saying why.
    future = json.dumps([reading(datetime.now(UTC) + timedelta(days=1))])
    assert "[0].at is in the future" in run("citizen", "write", citizen, OBS, future,
                                            data_dir=data, code=2)
    single = json.dumps(reading(hour_ago))
    assert f"{OBS} is a series: write a batch of readings as a list" in run(
        "citizen", "write", citizen, OBS, single, data_dir=data, code=2)
    assert json.loads(run("citizen", "export", citizen, data_dir=data))[OBS][0]["version"] == 1
