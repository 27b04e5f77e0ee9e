"""`python -m clients.examples.bluebadge`: serve the Blue Badge example with uvicorn."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from clients.examples.bluebadge.app import create_app
from clients.examples.bluebadge.config import NotRegistered, load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clients.examples.bluebadge",
                                     description="The Blue Badge example service.")
    parser.add_argument("--vault", default="http://localhost:8000",
                        help="The vault's URL (its OAuth issuer).")
    parser.add_argument("--host", default="127.0.0.1", help="Address to listen on.")
    parser.add_argument("--port", type=int, default=8001, help="Port to listen on.")
    parser.add_argument("--public-url", help="URL browsers use (default http://localhost:PORT).")
    parser.add_argument("--data-dir", type=Path, default=Path("vault-data"),
                        help="The vault's data dir; the app's key and client.json are in "
                             "its bluebadge/ folder.")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.data_dir, vault_url=args.vault,
                             public_url=args.public_url or f"http://localhost:{args.port}")
    except NotRegistered as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    import uvicorn

    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
