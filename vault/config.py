"""Settings: one object, built once from arguments and VAULT_* variables, passed in."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vault.services.witnessing import parse_witnesses

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Everything the vault can be told. Environment: VAULT_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="VAULT_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    #: Where citizens and services reach the vault; sets the WebAuthn RP ID and origin
    #: and the OAuth issuer. WebAuthn needs a name (localhost), never an IP address.
    public_url: str | None = None
    data_dir: Path = Path("vault-data")
    #: SQLite by default (a file in data_dir); postgresql://... in production.
    database_url: str | None = None
    #: Checkpoint origin and ledger key name; default "<host[:port]>/ledger".
    ledger_origin: str | None = None
    #: Serve /ledger/entries and /ledger/proofs/* without an auditor API key.
    ledger_public: bool = False
    #: Comma-separated bearer keys for auditors (when the ledger is not public).
    auditor_api_keys: SecretStr = SecretStr("")
    #: Ed25519 signer key (C2SP "PRIVATE+KEY+..." form); else a key file in data_dir.
    ledger_signing_key: SecretStr | None = None
    #: The key-encryption key(s): comma-separated base64 32-byte keys, the first current.
    #: Without it, a key file under data_dir/keys (created on first run, mode 0600).
    master_key: SecretStr | None = None
    #: The web app's secret (CSRF tokens, recovery-code hashes): base64, >= 32 bytes,
    #: shared by every worker. Without it, a key file under data_dir/keys.
    app_secret: SecretStr | None = None
    #: The ES256 key(s) signing access tokens: a PEM (or a private JWK); a second one is
    #: the retiring key. Without it, keys/token.key (created on first run, mode 0600).
    token_signing_key: SecretStr | None = None
    #: The ES256 key(s) signing the vault's requests to sources (categories held at
    #: source), as token_signing_key; without it, keys/source.key.
    source_signing_key: SecretStr | None = None
    #: Seconds a source may take to answer a read before it is a 503 source_unavailable.
    source_timeout: float = Field(default=2.0, gt=0, le=60)
    #: A record change with at most this many grants to tell queues its `record.changed`
    #: messages in its own transaction; more are left to the change teller (0: always).
    changes_told_inline: int = Field(default=100, ge=0, le=10_000)
    #: Each service's requests to /v1/* per second, and the burst it may spend at once
    #: (per worker process).
    client_rate_limit: float = Field(default=50.0, gt=0, le=100_000)
    client_rate_burst: int = Field(default=100, ge=1, le=1_000_000)
    #: Each service's requests that ask citizens (POST /oauth/par, /oauth/bc-authorize)
    #: per second and at once, per worker: far fewer than reads, since each may put a
    #: request in someone's wallet.
    client_request_rate_limit: float = Field(default=2.0, gt=0, le=100_000)
    client_request_rate_burst: int = Field(default=10, ge=1, le=1_000_000)
    #: Wallet sessions end after this long without a request, and after this long at all.
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_max_hours: int = Field(default=12, ge=1, le=24 * 30)
    #: Any request body over this many bytes is refused (413) before it is read; routes
    #: may keep smaller caps of their own (/oauth/* forms: 64 KiB).
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    #: /metrics: a bearer token that may read it (`Authorization: Bearer <token>`), and
    #: whether loopback peers (127.0.0.0/8, ::1) may read it without one. Behind a reverse
    #: proxy on the same machine every peer is loopback: turn that off there.
    metrics_token: SecretStr | None = None
    metrics_loopback: bool = True
    #: Production refuses unsafe defaults (e.g. generating keys silently).
    production: bool = False
    demo: bool = False
    checkpoint_interval: float = Field(default=0.25, gt=0, le=1.0)
    #: Witnesses that cosign checkpoints (C2SP tlog-witness): "<verifier key> <URL>" pairs,
    #: one per line or separated by ';'. A checkpoint counts as published only with
    #: `witness_quorum` of their cosignatures (0: published at once, cosigned as they come).
    witnesses: str = ""
    witness_quorum: int = Field(default=0, ge=0, le=100)
    #: Seconds each witness may take to answer one request.
    witness_timeout: float = Field(default=2.0, gt=0, le=60)
    #: How often unanswered requests lapse and ended grants expire (seconds).
    sweep_interval: float = Field(default=5.0, gt=0, le=3600)
    log_level: str = "INFO"

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("public_url must be an http(s) URL with a host name")
        return v.rstrip("/")

    @field_validator("witnesses")
    @classmethod
    def _check_witnesses(cls, v: str) -> str:
        parse_witnesses(v)  # a ValueError names the bad pair
        return v

    @model_validator(mode="after")
    def _check_quorum(self) -> Settings:
        if self.witness_quorum > len(parse_witnesses(self.witnesses)):
            raise ValueError("witness_quorum is more than the witnesses listed: no checkpoint "
                             "could ever be published")
        return self

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://localhost:{self.port}"

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'vault.db'}"

    @property
    def default_origin(self) -> str:
        return f"{urlsplit(self.base_url).netloc}/ledger"

    @property
    def auditor_keys(self) -> list[str]:
        raw = self.auditor_api_keys.get_secret_value()
        return [k.strip() for k in raw.split(",") if k.strip()]

    @property
    def key_dir(self) -> Path:
        return self.data_dir / "keys"
