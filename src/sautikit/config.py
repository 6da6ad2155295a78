"""Settings: one object, read once at start from ``SAUTIKIT_*`` variables and a TOML file.

Precedence, highest first: explicit arguments, environment variables, the TOML file named
by ``SAUTIKIT_CONFIG_FILE`` (default ``sautikit.toml`` in the working directory, if present),
then the defaults below, which are the embedded single-machine setup of SPEC §10.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

if TYPE_CHECKING:
    from sautikit.cluster.roles import Role
    from sautikit.sip.session_timer import SessionTimerConfig

__all__ = ["ConfigError", "Settings", "host_problem", "load_settings", "unknown_variables"]


class ConfigError(Exception):
    """A setting is wrong; the message names it so the operator can fix it."""


def _config_file() -> Path:
    return Path(os.environ.get("SAUTIKIT_CONFIG_FILE", "sautikit.toml"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SAUTIKIT_", extra="forbid", validate_default=True, frozen=True
    )

    data_dir: Path = Path("var")
    database_url: str = Field(
        default="", description="SQLAlchemy URL; empty means SQLite under data_dir."
    )
    database_pool_size: int = Field(
        default=20, ge=1, le=1000, description="Database connections kept open for reads."
    )
    database_pool_overflow: int = Field(
        default=20, ge=0, le=1000, description="Extra connections opened under load."
    )
    database_writers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="PostgreSQL: writers committing side by side, one transaction per write "
        "(1: one writer committing writes in groups). SQLite always has one.",
    )
    storage_url: str = Field(default="", description="Empty means a directory under data_dir.")

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    public_url: str = Field(
        default="", description="How apps reach this API; default http://HOST:PORT."
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)

    sip_host: str = Field(
        default="127.0.0.1",
        description="The address SIP listens on (UDP, and TCP/TLS unless set apart); "
        "0.0.0.0 for every one.",
    )
    sip_tcp_host: str = Field(
        default="", description="The address SIP over TCP listens on; empty means sip_host."
    )
    sip_port: int = Field(default=5080, ge=0, le=65535)
    sip_advertised_host: str = Field(
        default="",
        description="The address or name phones and carriers reach SIP at (Via, Contact); "
        "empty means sip_host, or the primary address when sip_host is 0.0.0.0.",
    )
    sip_auth_max_failures: int = Field(
        default=10, ge=1, description="Wrong digest answers from one address before it is refused."
    )
    sip_auth_max_failures_per_user: int = Field(
        default=30,
        ge=1,
        description="Wrong answers for one username (any address) before the addresses "
        "guessing it are refused; an address that never failed keeps working.",
    )
    sip_auth_failure_window_seconds: float = Field(default=60.0, gt=0)
    sip_auth_block_seconds: float = Field(
        default=600.0, ge=0, description="How long a guessing address is refused (403)."
    )
    media_host: str = Field(default="", description="The address RTP binds to; empty: sip_host.")
    media_advertised_address: str = Field(
        default="",
        description="The address SDP names for RTP (a public IP behind 1:1 NAT); empty means "
        "sip_advertised_host when it is an IP, else media_host (never 0.0.0.0).",
    )
    sip_digest_algorithms: str = Field(
        default="MD5",  # sip.digest.DEFAULT_CHALLENGE_ALGORITHMS (not imported: start-up)
        description="Digest algorithms the registrar challenges phones with, in order: "
        "MD5 (every phone), SHA-256 (RFC 8760; baresip 1.0 cannot answer it).",
    )
    sip_tls_cert: str = Field(
        default="",
        description="PEM certificate chain SIP over TLS presents; with sip_tls_key it turns "
        "TLS (sips:) on.",
    )
    sip_tls_key: str = Field(default="", description="The PEM private key of sip_tls_cert.")
    sip_tls_port: int = Field(default=5061, ge=0, le=65535, description="The SIP TLS port.")
    sip_tls_host: str = Field(
        default="", description="The address SIP over TLS listens on; empty means sip_host."
    )
    sip_tls_ca_file: str = Field(
        default="",
        description="PEM CA certificates that trunks reached over TLS must be signed by; "
        "empty means the system's trust store.",
    )
    sip_ws_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="The port of SIP over WebSocket (RFC 7118, `ws://`) for browser clients; "
        "0 turns it off. Put it behind an HTTPS proxy, or use sip_wss_port.",
    )
    sip_wss_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="The port of SIP over secure WebSocket (`wss://`, the certificate of "
        "sip_tls_cert); 0 turns it off. Browsers outside localhost need wss.",
    )
    sip_ws_host: str = Field(
        default="", description="The address SIP over WebSocket listens on; empty: sip_host."
    )
    sip_session_expires_seconds: int = Field(
        default=1800,
        ge=0,
        description="The session interval (RFC 4028) Sautikit asks for and refreshes; a call "
        "not refreshed within it is ended with BYE (a vanished phone or SBC). 0 turns "
        "session timers off.",
    )
    sip_min_se_seconds: int = Field(
        default=90,
        ge=1,
        description="The shortest session interval accepted (Min-SE); RFC 4028 says 90.",
    )
    trunk_ping_seconds: float = Field(
        default=30.0,
        ge=0,
        description="Every this many seconds an OPTIONS goes to each address of each "
        "outbound trunk; a trunk none of whose addresses answers is marked down and skipped "
        "while another trunk carries the number. 0 turns the pings off.",
    )
    rtp_ports: str = "20000-29999"
    one_way_audio_seconds: float = Field(
        default=10.0,
        ge=0,
        description="Seconds without RTP from a leg (after its SDP was agreed) reported as "
        "one-way audio on the call; 0 turns the watch off.",
    )

    node_id: str = Field(
        default="",
        max_length=100,
        description="Names this process in calls.owner and its lease; unique per process "
        "sharing a database. Empty: the id kept in data_dir/node-id (the host name and a "
        "random suffix, made at first start), so a replaced container with a new host name "
        "but the same volume keeps its id, and one without the volume gets a new one.",
    )
    roles: str = Field(
        default="api,pbx,worker",
        description="What this process does, comma-separated: api (the HTTP API and "
        "console), pbx (SIP, RTP and the calls), worker (event delivery, transcription, "
        "housekeeping). Split roles need PostgreSQL; see docs/operations.md.",
    )
    node_lease_seconds: float = Field(
        default=15.0,
        ge=3,
        le=600,
        description="A node renews its lease every third of this; once a node's lease has "
        "run out, another node ends the calls it left live (billed, holds released).",
    )
    realtime_priority: bool = Field(
        default=False,
        description="Run the process at real-time priority (SCHED_RR), as media servers are.",
    )
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    unowned_call_seconds: int = Field(
        default=120,
        ge=5,
        le=3600,
        description="A SIP leg or live call row no call owns this long is ended by the reaper.",
    )
    queued_call_expiry_seconds: int = Field(
        default=60,
        ge=5,
        le=3600,
        description="A queued API call no process placed within this long fails instead.",
    )
    app_timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    recording_url_lifetime_seconds: int = Field(default=900, ge=60, le=7 * 24 * 3600)
    transcription_engine: Literal["whisper"] = "whisper"
    transcription_model_path: str = Field(
        default="", description="A model folder; empty means the bundled model."
    )
    transcription_concurrency: int = Field(default=1, ge=1, le=16)
    housekeeping_seconds: int = Field(
        default=3600, ge=60, description="How often retention and number rentals are run."
    )

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"

    rate_limit_per_second: float = Field(default=20.0, gt=0)
    rate_limit_burst: int = Field(default=40, ge=1)
    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=60)

    secret_key: SecretStr = Field(
        default=SecretStr(""),
        description="Signs URLs, encrypts stored credentials; made under data_dir if empty.",
    )
    operator_token: SecretStr = Field(
        default=SecretStr(""), description="Guards /v1/operator; the operator API is off if empty."
    )

    allow_private_http: bool = Field(
        default=False,
        description="Let callbacks, events and play URLs reach loopback and private addresses.",
    )

    overload_max_setups: int = Field(
        default=500, ge=0, description="New calls get 503 while this many are in setup (0: off)."
    )
    overload_max_write_queue: int = Field(
        default=2000, ge=0, description="… or while this many database writes wait (0: off)."
    )
    overload_max_write_wait_ms: float = Field(
        default=1000.0, ge=0, description="… or while a database write has waited this long."
    )
    overload_max_loop_lag_ms: float = Field(
        default=100.0, ge=0, description="… or while the event loop's median lag exceeds this."
    )
    overload_min_free_rtp_ports: int = Field(
        default=16, ge=0, description="… or while fewer RTP port pairs than this are free."
    )
    overload_max_cpu_percent: float = Field(
        default=0.0, ge=0, description="… or while the process uses this much of a core (0: off)."
    )
    overload_retry_after_seconds: int = Field(
        default=5, ge=1, le=3600, description="Retry-After on those 503 answers."
    )

    min_call_funding_seconds: int = Field(
        default=60,
        ge=1,
        le=3600,
        description="A call is placed only if the wallet pays this long: its first slice.",
    )
    call_quota_seconds: int = Field(
        default=300,
        ge=1,
        le=86_400,
        description="A live call's next slice of credit, renewed while it lasts (SPEC §6).",
    )

    # Defaults of SPEC §6 while the rate deck is empty.
    default_outbound_rate_minor: int = Field(default=300, ge=0)
    default_inbound_rate_minor: int = Field(default=0, ge=0)
    default_on_net_rate_minor: int = Field(
        default=0,
        ge=0,
        description="Per minute for a call to a number this deployment holds (it never "
        "reaches a carrier), while no on_net line of the rate deck matches.",
    )
    default_number_rental_minor: int = Field(default=10_000, ge=0)
    default_transcription_rate_minor: int = Field(default=100, ge=0)

    # M-Pesa through Safaricom's Daraja API (issue 18); top-ups are off until these are set.
    daraja_consumer_key: SecretStr = Field(default=SecretStr(""))
    daraja_consumer_secret: SecretStr = Field(default=SecretStr(""))
    daraja_shortcode: str = Field(default="", description="The Paybill number payments go to.")
    daraja_passkey: SecretStr = Field(default=SecretStr(""), description="The STK push passkey.")
    daraja_environment: Literal["sandbox", "production"] = "sandbox"
    daraja_base_url: str = Field(
        default="", description="Daraja's address; empty means the environment's own."
    )
    daraja_callback_base_url: str = Field(
        default="", description="How Safaricom reaches this API; default public_url."
    )
    daraja_callback_allowlist: list[str] = Field(
        default_factory=list,
        description="Addresses or CIDRs M-Pesa callbacks may come from; empty allows any.",
    )
    daraja_stk_query_after_seconds: int = Field(
        default=90, ge=10, description="A push with no callback by then is asked about."
    )
    daraja_timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    @field_validator("rtp_ports")
    @classmethod
    def _check_rtp_ports(cls, value: str) -> str:
        low, sep, high = value.partition("-")
        if not sep or not low.isdigit() or not high.isdigit():
            raise ValueError("expected a range like 20000-29999")
        if not 1024 <= int(low) < int(high) <= 65535:
            raise ValueError("the range must lie within 1024-65535, low before high")
        return value

    @field_validator("daraja_callback_allowlist")
    @classmethod
    def _check_callback_allowlist(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or CIDR") from None
        return value

    @field_validator("http_host", "sip_host", "media_host", "sip_tls_host", "sip_ws_host")
    @classmethod
    def _check_listen_host(cls, value: str) -> str:
        problem = host_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("storage_url")
    @classmethod
    def _check_storage_url(cls, value: str) -> str:
        if value:
            parts = urlsplit(value)
            if parts.scheme != "s3" or not parts.hostname:
                raise ValueError(
                    "expected s3://BUCKET[/PREFIX][?endpoint=https://…], or empty for a "
                    "directory under data_dir"
                )
        return value

    @field_validator("sip_advertised_host", "media_advertised_address")
    @classmethod
    def _check_advertisable(cls, value: str) -> str:
        if value and value.strip("[]") in ("0.0.0.0", "::"):
            raise ValueError("a wildcard address cannot be advertised: nobody can reach it")
        return value

    @field_validator("sip_digest_algorithms")
    @classmethod
    def _check_digest_algorithms(cls, value: str) -> str:
        from sautikit.sip.digest import DigestError, challenge_algorithms

        try:
            return ",".join(challenge_algorithms(value))
        except DigestError as error:
            raise ValueError(str(error)) from None

    @field_validator("roles")
    @classmethod
    def _check_roles(cls, value: str) -> str:
        from sautikit.cluster.roles import parse_roles, roles_text

        return roles_text(parse_roles(value))

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if value and not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            if value.startswith(("postgresql://", "postgres://")):
                return "postgresql+asyncpg://" + value.split("://", 1)[1]
            raise ValueError("use sqlite+aiosqlite://… or postgresql://… (asyncpg)")
        return value

    @model_validator(mode="after")
    def _check_ports_differ(self) -> Settings:
        if self.http_port and self.http_port == self.sip_port and self.http_host == self.sip_host:
            raise ValueError("http_port and sip_port must differ")
        if bool(self.sip_tls_cert) != bool(self.sip_tls_key):
            raise ValueError("set both sip_tls_cert and sip_tls_key, or neither")
        if self.sip_tls_enabled and self.sip_tls_port and self.sip_tls_port == self.sip_port:
            raise ValueError("sip_tls_port and sip_port must differ")
        if self.sip_wss_port and not self.sip_tls_enabled:
            raise ValueError("sip_wss_port needs sip_tls_cert and sip_tls_key")
        sip_ports = [self.sip_port, self.sip_tls_port if self.sip_tls_enabled else 0]
        for name in ("sip_ws_port", "sip_wss_port"):
            port = getattr(self, name)
            if port and port in sip_ports:
                raise ValueError(f"{name} must differ from the other SIP ports")
            sip_ports.append(port)
        if self.roles != "api,pbx,worker" and not self.database_url.startswith("postgresql"):
            raise ValueError(
                "split roles need a database the nodes share: set SAUTIKIT_DATABASE_URL to "
                "PostgreSQL (SQLite is one process: api,pbx,worker)"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_config_file())
        return (init_settings, env_settings, toml)

    # -- derived values -------------------------------------------------------------

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'sautikit.db').resolve()}"

    @property
    def effective_public_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.http_host}:{self.http_port}"

    @property
    def daraja_enabled(self) -> bool:
        return bool(
            self.daraja_consumer_key.get_secret_value()
            and self.daraja_consumer_secret.get_secret_value()
            and self.daraja_shortcode
            and self.daraja_passkey.get_secret_value()
        )

    @property
    def effective_daraja_base_url(self) -> str:
        if self.daraja_base_url:
            return self.daraja_base_url.rstrip("/")
        if self.daraja_environment == "production":
            return "https://api.safaricom.co.ke"
        return "https://sandbox.safaricom.co.ke"

    @property
    def effective_daraja_callback_base_url(self) -> str:
        return self.daraja_callback_base_url.rstrip("/") or self.effective_public_url

    @property
    def sip_tls_enabled(self) -> bool:
        return bool(self.sip_tls_cert and self.sip_tls_key)

    @property
    def session_timers(self) -> SessionTimerConfig | None:
        """RFC 4028 session timers as set (None: off); an interval below the floor is
        raised to it."""
        # Imported here: the CLI reads settings and must not load the SIP stack for it.
        from sautikit.sip.session_timer import SessionTimerConfig

        if not self.sip_session_expires_seconds:
            return None
        expires = max(self.sip_session_expires_seconds, self.sip_min_se_seconds)
        return SessionTimerConfig(expires=expires, min_se=self.sip_min_se_seconds)

    @property
    def role_set(self) -> frozenset[Role]:
        from sautikit.cluster.roles import parse_roles

        return parse_roles(self.roles)

    @property
    def sip_digest_algorithm_list(self) -> tuple[str, ...]:
        return tuple(self.sip_digest_algorithms.split(","))  # canonical once validated

    @property
    def rtp_port_range(self) -> tuple[int, int]:
        low, _, high = self.rtp_ports.partition("-")
        return int(low), int(high)

    def signing_key(self) -> bytes:
        """The operator's secret, or one generated once and kept under ``data_dir``."""
        if self.secret_key.get_secret_value():
            return self.secret_key.get_secret_value().encode()
        path = self.data_dir / "secret.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
        return path.read_text().strip().encode()

    def masked(self) -> dict[str, Any]:
        """The effective settings for display, secrets replaced by ``********``."""
        shown: dict[str, Any] = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                value = "********" if value.get_secret_value() else ""
            elif isinstance(value, Path):
                value = str(value)
            shown[name] = value
        shown["database_url"] = _mask_url_password(self.effective_database_url)
        shown["storage_url"] = _mask_url_password(self.storage_url)
        return shown


def _mask_url_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, at, host = rest.rpartition("@")
    user, colon, _ = creds.partition(":")
    return f"{scheme}://{user}{':********' if colon else ''}{at}{host}"


_HOST_NAME = re.compile(
    r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)


def host_problem(value: str) -> str | None:
    """What is wrong with a listen address (an IP, a host name, or empty), or None."""
    if not value:
        return None
    bare = value.strip("[]")
    looks_numeric = all(c.isdigit() or c == "." for c in bare)
    if ":" in bare or looks_numeric:
        try:
            ipaddress.ip_address(bare)
        except ValueError:
            return f"{value!r} is not an IP address"
        return None
    if not _HOST_NAME.fullmatch(value):
        return f"{value!r} is not an IP address or a host name"
    return None


# Variables read outside Settings: the config file's path, and tools' own.
_OTHER_VARIABLES = frozenset(
    {
        "SAUTIKIT_CONFIG_FILE",
        "SAUTIKIT_TEST_DATABASE_URL",
        "SAUTIKIT_BENCH_POSTGRES",
        "SAUTIKIT_CONSOLE_SCREENSHOTS",
        "SAUTIKIT_API_KEY",
        "SAUTIKIT_BASE_URL",
        "SAUTIKIT_SIGNING_SECRET",
    }
)


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """A warning for each ``SAUTIKIT_*`` variable that is no setting (a typo is otherwise
    silently ignored), naming the closest known one."""
    known = {f"SAUTIKIT_{name.upper()}" for name in Settings.model_fields}
    warnings = []
    for variable in sorted(environ if environ is not None else os.environ):
        if not variable.startswith("SAUTIKIT_") or variable in known | _OTHER_VARIABLES:
            continue
        closest = difflib.get_close_matches(variable, sorted(known), n=1, cutoff=0.6)
        hint = f"; did you mean {closest[0]}?" if closest else ""
        warnings.append(f"{variable} is not a Sautikit setting and is ignored{hint}")
    return warnings


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, turning pydantic's error into one that names each bad setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]) or "settings"
            setting = f"SAUTIKIT_{name.upper()}" if error["loc"] else name
            problems.append(f"{setting}: {error['msg']}")
        raise ConfigError("invalid setting — " + "; ".join(problems)) from None
