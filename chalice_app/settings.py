"""Configuration, read once from the environment at the edge (Chalice stage variables in AWS)."""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from chalice_app.presign import MAX_VISIBILITY_TIMEOUT_S

DEFAULT_TABLE = "pb-fm-webpage-sessions"
DEFAULT_BUCKET = "pb-fm-webpage-mvp-assets"
DEFAULT_QUEUE_PREFIX = "pb-fm-webpage"


@dataclass(frozen=True)
class Settings:
    table_name: str = DEFAULT_TABLE
    bucket_name: str = DEFAULT_BUCKET
    queue_prefix: str = DEFAULT_QUEUE_PREFIX
    region: str = "us-west-1"
    # None in AWS; the moto server's URL locally. One code path either way.
    aws_endpoint_url: str | None = None
    # Where browsers reach AWS with the presigned URLs we hand out: None in AWS (its own hosts);
    # the local stack's gateway, which verifies signatures as AWS does, in front of moto.
    aws_public_endpoint_url: str | None = None
    price_source: str = "simulated"
    # Where the page loads PyScript/Pyodide from; "" means this server serves them itself.
    asset_base_url: str = ""
    mcp_token: str | None = None
    # Where users open pages, e.g. "https://pages.example.com" (no trailing slash needed); None:
    # links are built from each request's Host and X-Forwarded-Proto.
    public_base_url: str | None = None
    cookie_secret: str = field(default_factory=lambda: secrets.token_hex(32))
    # An idle viewer's only calls to us are its heartbeats (its queues are read elsewhere): one per
    # 15 s is 4 a minute. A master silent for longer than the timeout is replaced by the
    # longest-connected live observer at the next heartbeat of any other browser, so failover takes
    # at most timeout + interval = 45 s, within twice the timeout.
    heartbeat_timeout_s: float = 30.0
    heartbeat_interval_s: float = 15.0
    # Browsers silent this long are removed (by the sweep) and their queues deleted; silent for
    # longer than the timeout, they are left out of the participant list already.
    stale_after_s: float = 120.0
    # The participant list goes out at most once per this interval, however many joins and leaves.
    participants_every_s: float = 2.0
    # ... and less often in a large session: a list costs one send per browser, at most this many a
    # second (1,000 viewers: a list every 20 s).
    participant_sends_per_s: float = 50.0
    max_viewers: int = 1000
    max_tabs_per_browser: int = 8
    # The queues' own visibility timeout, which the history receives use: short, so a poll cut
    # mid-flight holds the history queue (one message group) back only this long.
    queue_visibility_timeout_s: int = 10
    # How long a received live message stays hidden: the page acknowledges it with its next
    # heartbeat, up to an interval later (two or more when a beat fails), so this must outlast a few
    # intervals or messages would come back in steady state. A message lost in a cut poll hides
    # nothing behind it (a group per live message); the page repairs the gap by REST meanwhile.
    # None: four intervals and at least 30 s (60 s at the 15 s interval).
    live_visibility_timeout_s: int | None = None
    session_ttl_s: int = 24 * 3600
    max_message_bytes: int = 256 * 1024
    snapshot_every: int = 50
    # The master's "Refresh price" is accepted at most once per this many seconds per session.
    refresh_cooldown_s: float = 5.0
    # Lifetime of the presigned ReceiveMessage URLs a browser long-polls its own queues with (at most
    # 900 s: SQS honours a query-signed request ~15 minutes); heartbeat answers renew them.
    receive_url_lifetime_s: int = 900
    # A document this small (its JSON, in bytes) also rides inside the live message, so the page
    # need not fetch it from S3; it is stored in S3 all the same. 0 turns inlining off.
    inline_document_bytes: int = 32 * 1024
    allowed_origins: tuple[str, ...] = ()
    cookie_secure: bool = False
    # Exact origins of chat hosts' sandboxes that show the session view (an MCP App): the runtime
    # files and the browser operations answer CORS for these alone (never with credentials).
    view_origins: tuple[str, ...] = ()
    # A view's token lives this long unless renewed; every answer past half its life renews it.
    view_token_lifetime_s: int = 900

    def __post_init__(self) -> None:
        explicit = self.live_visibility_timeout_s
        if explicit is not None and not 2 * self.heartbeat_interval_s <= explicit <= MAX_VISIBILITY_TIMEOUT_S:
            raise ValueError(f"PBFM_LIVE_VISIBILITY_TIMEOUT must be at least twice the heartbeat interval "
                             f"({self.heartbeat_interval_s:g} s) and at most {MAX_VISIBILITY_TIMEOUT_S} s, "
                             f"not {explicit}: live messages are acknowledged with the next heartbeat")

    @property
    def live_visibility_s(self) -> int:
        """The visibility timeout of live receives (the presigned one and the server's fallback poll)."""
        if self.live_visibility_timeout_s is not None:
            return self.live_visibility_timeout_s
        return min(MAX_VISIBILITY_TIMEOUT_S, max(30, math.ceil(4 * self.heartbeat_interval_s)))

    @property
    def browser_endpoint_url(self) -> str | None:
        """The endpoint presigned URLs name: the public one, else the one the server uses."""
        return self.aws_public_endpoint_url or self.aws_endpoint_url

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        defaults = cls()

        def get(name: str, default: str) -> str:
            value = env.get(name)
            return default if value is None or value == "" else value

        if env.get("AWS_LAMBDA_FUNCTION_NAME") and not env.get("PBFM_COOKIE_SECRET"):
            # Each Lambda container would invent its own secret and reject the others' cookies.
            raise RuntimeError("PBFM_COOKIE_SECRET must be set in AWS (pbfm-webpage deploy sets it)")
        origins = tuple(o.strip() for o in env.get("PBFM_ALLOWED_ORIGINS", "").split(",") if o.strip())
        view_origins = tuple(o.strip().rstrip("/") for o in env.get("PBFM_VIEW_ORIGINS", "").split(",") if o.strip())
        return cls(
            table_name=get("PBFM_TABLE", defaults.table_name),
            bucket_name=get("PBFM_BUCKET", defaults.bucket_name),
            queue_prefix=get("PBFM_QUEUE_PREFIX", defaults.queue_prefix),
            region=get("AWS_DEFAULT_REGION", get("AWS_REGION", defaults.region)),
            aws_endpoint_url=env.get("PBFM_AWS_ENDPOINT_URL") or None,
            aws_public_endpoint_url=env.get("PBFM_AWS_PUBLIC_ENDPOINT_URL") or None,
            price_source=get("PBFM_PRICE_SOURCE", defaults.price_source),
            asset_base_url=get("PBFM_ASSET_BASE_URL", ""),
            mcp_token=env.get("PBFM_MCP_TOKEN") or None,
            public_base_url=env.get("PBFM_PUBLIC_BASE_URL") or None,
            cookie_secret=get("PBFM_COOKIE_SECRET", defaults.cookie_secret),
            heartbeat_timeout_s=float(get("PBFM_HEARTBEAT_TIMEOUT", str(defaults.heartbeat_timeout_s))),
            heartbeat_interval_s=float(get("PBFM_HEARTBEAT_INTERVAL", str(defaults.heartbeat_interval_s))),
            stale_after_s=float(get("PBFM_STALE_AFTER", str(defaults.stale_after_s))),
            participants_every_s=float(get("PBFM_PARTICIPANTS_EVERY", str(defaults.participants_every_s))),
            participant_sends_per_s=float(
                get("PBFM_PARTICIPANT_SENDS_PER_S", str(defaults.participant_sends_per_s))),
            max_viewers=int(get("PBFM_MAX_VIEWERS", str(defaults.max_viewers))),
            max_tabs_per_browser=int(get("PBFM_MAX_TABS_PER_BROWSER", str(defaults.max_tabs_per_browser))),
            queue_visibility_timeout_s=int(
                get("PBFM_QUEUE_VISIBILITY_TIMEOUT", str(defaults.queue_visibility_timeout_s))
            ),
            live_visibility_timeout_s=int(env["PBFM_LIVE_VISIBILITY_TIMEOUT"])
            if env.get("PBFM_LIVE_VISIBILITY_TIMEOUT") else None,
            session_ttl_s=int(get("PBFM_SESSION_TTL", str(defaults.session_ttl_s))),
            max_message_bytes=int(get("PBFM_MAX_MESSAGE_BYTES", str(defaults.max_message_bytes))),
            snapshot_every=int(get("PBFM_SNAPSHOT_EVERY", str(defaults.snapshot_every))),
            refresh_cooldown_s=float(get("PBFM_REFRESH_COOLDOWN", str(defaults.refresh_cooldown_s))),
            receive_url_lifetime_s=int(get("PBFM_RECEIVE_URL_LIFETIME", str(defaults.receive_url_lifetime_s))),
            inline_document_bytes=int(get("PBFM_INLINE_DOCUMENT_BYTES", str(defaults.inline_document_bytes))),
            allowed_origins=origins,
            cookie_secure=get("PBFM_COOKIE_SECURE", "false").lower() == "true",
            view_origins=view_origins,
            view_token_lifetime_s=int(get("PBFM_VIEW_TOKEN_LIFETIME", str(defaults.view_token_lifetime_s))),
        )
