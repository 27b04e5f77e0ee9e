"""Known-answer vectors from transparency-dev/merkle (shared/testdata/merkle).

Every file is one case. A case must verify exactly when it is a happy path: wantErr is
false AND every hash in it is 32 bytes long. Everything else must be rejected with a
LedgerError (a TypeError or IndexError would mean the verifier crashed, not rejected).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from ledger.errors import LedgerError, ProofError, RangeError
from ledger.hasher import HASH_SIZE
from ledger.verify import root_from_inclusion_proof, verify_consistency, verify_inclusion


def _repo_root() -> Path:
    for p in Path(__file__).resolve().parents:
        if (p / "pyproject.toml").is_file():
            return p
    raise RuntimeError("no pyproject.toml above the tests: cannot locate the repository root")


MERKLE = _repo_root().parent / "shared" / "testdata" / "merkle"
MISSING = (
    f"Merkle test vectors not found at {MERKLE}: the shared/ folder must sit beside the "
    "repository (see shared/testdata/merkle/README.md)"
)


def _case_files() -> list[Path]:
    if not MERKLE.is_dir():
        return []
    return sorted(
        p for kind in ("inclusion", "consistency") for p in (MERKLE / kind).rglob("*.json")
    )


FILES = _case_files()
PARAMS = [pytest.param(p, id=p.relative_to(MERKLE).as_posix()) for p in FILES] or [
    pytest.param(None, id="testdata-missing")
]


def _b64(s: str) -> bytes:
    return base64.b64decode(s, validate=True)


def _load(p: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(p.read_text(encoding="utf-8"))
    return case


def _hashes(case: dict[str, Any]) -> list[bytes]:
    keys = ("leafHash", "root") if "leafHash" in case else ("root1", "root2")
    return [_b64(case[k]) for k in keys] + [_b64(h) for h in case["proof"] or []]


def _must_verify(case: dict[str, Any]) -> bool:
    # consistency/additional/sizes-are-equal-one-and-proof-is-empty.json says wantErr=false
    # but its "roots" are 12 bytes: the README (and our contract) require rejecting any
    # hash that is not 32 bytes, so such a case is a must-reject whatever wantErr says.
    return not case["wantErr"] and all(len(h) == HASH_SIZE for h in _hashes(case))


def _run(case: dict[str, Any]) -> object:
    proof = [_b64(h) for h in case["proof"] or []]
    if "leafHash" in case:
        return verify_inclusion(
            leaf_hash=_b64(case["leafHash"]),
            index=case["leafIdx"],
            tree_size=case["treeSize"],
            proof=proof,
            expected_root=_b64(case["root"]),
        )
    return verify_consistency(
        first=case["size1"],
        second=case["size2"],
        proof=proof,
        first_root=_b64(case["root1"]),
        second_root=_b64(case["root2"]),
    )


def test_vectors_are_present() -> None:
    assert MERKLE.is_dir(), MISSING
    assert len(FILES) > 100, f"only {len(FILES)} vector files under {MERKLE}"
    kinds = {p.relative_to(MERKLE).parts[0] for p in FILES}
    assert kinds == {"inclusion", "consistency"}


def test_happy_paths_are_the_expected_ones() -> None:
    """Guard against a decoding slip turning every case into an (easy) must-reject."""
    assert MERKLE.is_dir(), MISSING
    happy = {p.relative_to(MERKLE).as_posix() for p in FILES if _must_verify(_load(p))}
    expected = {f"{k}/{i}/happy-path.json" for k in ("inclusion", "consistency")
                for i in range(5)}
    assert happy == expected | {"inclusion/single-entry/matching-root-and-leaf.json"}


@pytest.mark.parametrize("path", PARAMS)
def test_vector(path: Path | None) -> None:
    if path is None:
        pytest.fail(MISSING)
    case = _load(path)
    if _must_verify(case):
        result = _run(case)
        if "leafHash" in case:
            assert result.root == _b64(case["root"])  # type: ignore[attr-defined]
            assert root_from_inclusion_proof(
                leaf_hash=_b64(case["leafHash"]),
                index=case["leafIdx"],
                tree_size=case["treeSize"],
                proof=[_b64(h) for h in case["proof"] or []],
            ) == _b64(case["root"])
        else:
            assert (result.first, result.second) == (  # type: ignore[attr-defined]
                case["size1"], case["size2"])
        return
    with pytest.raises(LedgerError) as info:
        _run(case)
    assert isinstance(info.value, ProofError | RangeError), type(info.value)
