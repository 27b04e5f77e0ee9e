"""`python -m clients.examples.register`: serve the reference register with uvicorn.

The operator registers it once (`vault service add --issues address.home --source-url
<public_url>/source --jwks-file <folder>/jwks.json ...`) and leaves in `<folder>`:
`service-key.pem` (its private key, 0600), `client.json` (`{"client_id": ...}`) and
`residents.json` (`{"<pairwise sub>": {"address.home": {...}}}`: who is on the register,
by the subject the vault gave the register for each citizen when they linked it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from clients.examples.register.app import Register, RegisterConfig, create_app
from clients.service import ServiceKey

__all__ = ["load", "main"]


def load(folder: Path, *, vault_url: str, public_url: str) -> tuple[RegisterConfig, Register]:
    """The register's config and entries from `folder`; ValueError saying what is missing."""
    try:
        key = ServiceKey.from_file(folder / "service-key.pem")
        client_id = json.loads((folder / "client.json").read_text())["client_id"]
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{folder} does not hold a registered register: {exc}") from None
    held = Register()
    residents = folder / "residents.json"
    if residents.exists():
        for sub, entries in json.loads(residents.read_text()).items():
            for category, value in entries.items():
                held.enrol(sub, category, value)
    return RegisterConfig(vault_url=vault_url, client_id=client_id, key=key,
                          public_url=public_url), held


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clients.examples.register",
                                     description="The reference electoral register (a source).")
    parser.add_argument("--vault", default="http://localhost:8000", help="The vault's URL.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8003)
    parser.add_argument("--public-url", help="URL the vault reaches it at "
                                             "(default http://localhost:PORT).")
    parser.add_argument("--folder", type=Path, default=Path("vault-data") / "register",
                        help="Its key, client.json and residents.json.")
    args = parser.parse_args(argv)
    try:
        config, held = load(args.folder, vault_url=args.vault,
                            public_url=args.public_url or f"http://localhost:{args.port}")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    import uvicorn

    uvicorn.run(create_app(config, held), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
