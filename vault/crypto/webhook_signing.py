"""Standard Webhooks signatures (standardwebhooks.com): what a service checks on delivery.

    webhook-id: msg_...      webhook-timestamp: <unix seconds>
    webhook-signature: v1,<base64 HMAC-SHA256(secret, "<id>.<timestamp>.<body>")>

Each service's secret is derived from the app secret and the service id, never stored:
the vault recomputes it to sign, the operator prints it once for the service
(`whsec_<base64>`), and rotating the app secret rotates them all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

__all__ = ["SECRET_PREFIX", "printable", "sign", "signature_headers", "webhook_secret"]

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)


def webhook_secret(app_secret: bytes, service_id: str) -> bytes:
    """The 32-byte signing secret of one service's webhooks."""
    return hmac.new(app_secret, b"webhook-secret\x00" + service_id.encode("utf-8"),
                    hashlib.sha256).digest()


def printable(secret: bytes) -> str:
    """The secret as services configure it: `whsec_<base64>`."""
    return SECRET_PREFIX + base64.b64encode(secret).decode()


def sign(secret: bytes, *, message_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<base64>` signature of one delivery."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest()).decode()


def signature_headers(secret: bytes, *, message_id: str, timestamp: int, body: bytes
                      ) -> dict[str, str]:
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, message_id=message_id, timestamp=timestamp,
                                      body=body),
            "content-type": "application/json"}
