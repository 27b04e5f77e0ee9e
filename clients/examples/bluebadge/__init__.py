"""A council Blue Badge team's web app, written against the service SDK.

    python -m clients.examples.bluebadge --vault http://localhost:8000 --port 8001 \\
        --data-dir vault-data

`make run` starts it beside the vault (clients/examples/demo.py registers it first).
"""

from clients.examples.bluebadge.app import create_app
from clients.examples.bluebadge.config import AppConfig, BlueBadgeError, NotRegistered, load_config

__all__ = ["AppConfig", "BlueBadgeError", "NotRegistered", "create_app", "load_config"]
