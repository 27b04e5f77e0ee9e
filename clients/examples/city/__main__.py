"""`python -m clients.examples.city`: serve every city service, each on its own port
(the first at --port, the others at the offsets in `config.SPECS`), in one process."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from fastapi import FastAPI

from clients.examples.city import APPS, SPECS
from clients.examples.city.config import NotRegistered, load_configs, service_urls


async def _serve(apps: dict[str, FastAPI], host: str, ports: dict[str, int]) -> None:
    import uvicorn

    servers = [uvicorn.Server(uvicorn.Config(app, host=host, port=ports[slug],
                                             log_level="warning"))
               for slug, app in apps.items()]
    await asyncio.gather(*(s.serve() for s in servers))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clients.examples.city",
                                     description="The city's example services.")
    parser.add_argument("--vault", default="http://localhost:8000",
                        help="The vault's URL (its OAuth issuer).")
    parser.add_argument("--host", default="127.0.0.1", help="Address to listen on.")
    parser.add_argument("--port", type=int, default=8002,
                        help="Port of the first service (the others follow it).")
    parser.add_argument("--data-dir", type=Path, default=Path("vault-data"),
                        help="The vault's data dir; each service's key and client.json "
                             "are in its city/<service>/ folder.")
    args = parser.parse_args(argv)
    public = service_urls(args.port)
    try:
        configs = load_configs(args.data_dir, vault_url=args.vault, urls=public)
    except NotRegistered as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    apps = {slug: APPS[slug](config) for slug, config in configs.items()}
    ports = {s.slug: args.port + s.port_offset for s in SPECS}
    asyncio.run(_serve(apps, args.host, ports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
