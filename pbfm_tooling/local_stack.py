"""The whole product on one machine: moto's server as the embedded AWS plus the Chalice app.

``LocalStack`` starts moto in-process on a free port, creates the bucket, table and CORS from the
same definitions the AWS template uses, and serves the Chalice app with its local server (threaded,
no autoreload). A sweeper thread does locally what the schedule does in AWS (``sweep_sessions``):
liveness, stale browsers, coalesced participant lists, expired sessions' queues — every
``PBFM_LOCAL_SWEEP_EVERY`` seconds (default 2; 0 turns it off). Used by
``pbfm-webpage serve``/``demo``/``bench`` and by the test fixtures.

With a ``state_dir`` (``serve``/``demo`` by default; tests and benchmarks only when they ask) the
stack survives a restart: the table and bucket are restored from it after the resources are created
and saved back on stop and every ``SAVE_EVERY_S``; the cookie secret comes from it (unless
``PBFM_COOKIE_SECRET`` is set), so cookies stay valid; and moto and the gateway listen on the same
ports as before (app port + 2 and + 1 by default, remembered in the directory), so the queue URLs
stored in the table and the gateway origin named by open pages' CSP and presigned URLs stay right.
Queues are not saved: an open page finds its queues gone (410), joins again and is live once more.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from pbfm_tooling.moto_closing import closing
from pbfm_tooling.state_dir import Restored, StateDirectory

T = TypeVar("T")

# moto reads this once, when first imported: with it, the bucket's own CORS rules answer (as on AWS)
# instead of moto's allow-everything default. Set here so importing this module is enough.
os.environ["MOTO_DISABLE_GLOBAL_CORS"] = "true"

if TYPE_CHECKING:
    from chalice_app.aws import AwsClients

DEFAULT_SWEEP_EVERY_S = 2.0
SAVE_EVERY_S = 30.0
PORTS_FILE = "ports.json"
log = logging.getLogger(__name__)

LOCAL_CREDENTIALS = {
    # moto accepts any credentials; fixed fake ones guarantee real ones are never used locally.
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-west-1",  # the product spec's region, as in AWS
}


class PortTaken(OSError):
    """A port the state directory pins (so open pages keep working after a restart) is in use."""


def patch_moto_as_the_embedded_aws() -> None:
    """What the embedded AWS changes in this process's moto (idempotent): AWS's guarantees where moto
    lacks them, and moto's per-request waste removed. The contract tests run moto the same way."""
    from pbfm_tooling.moto_atomic import make_dynamodb_writes_atomic
    from pbfm_tooling.moto_closing import refuse_writes_while_closing
    from pbfm_tooling.moto_dispatch import list_moto_modules_once
    from pbfm_tooling.moto_long_poll import make_sqs_long_polls_wait
    from pbfm_tooling.moto_query import make_dynamodb_queries_read_one_partition
    from pbfm_tooling.moto_results import make_dynamodb_results_plain_json
    from pbfm_tooling.moto_sqs_attributes import make_sqs_attributes_cheap

    make_dynamodb_writes_atomic()
    refuse_writes_while_closing()
    make_dynamodb_queries_read_one_partition()
    make_dynamodb_results_plain_json()
    make_sqs_long_polls_wait()
    make_sqs_attributes_cheap()
    list_moto_modules_once()


class LocalStack:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, overrides: Mapping[str, str] | None = None,
                 *, quiet: bool = True, state_dir: Path | None = None, fresh: bool = False,
                 save_every_s: float = SAVE_EVERY_S) -> None:
        self.host = host
        self.port = port
        self.overrides = dict(overrides or {})
        self.quiet = quiet
        self.state = None if state_dir is None else StateDirectory(Path(state_dir))
        self.fresh = fresh
        self.save_every_s = save_every_s
        self.restored = Restored(0, 0, 0.0)
        self._moto: Any = None
        self._clients: AwsClients | None = None
        self._gateway: Any = None
        self._environment_before: dict[str, str | None] = {}
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._sweeper: threading.Thread | None = None
        self._saver: threading.Thread | None = None
        self._stopping = threading.Event()
        self._save_lock = threading.Lock()
        self.sweeps = 0
        # Requests that reached our server, by path, and the seconds they held it (tests: "no poll
        # reaches us in steady state"; bench: requests and request-seconds per idle viewer-minute).
        self.requests: Counter[str] = Counter()
        self.request_seconds: defaultdict[str, float] = defaultdict(float)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> LocalStack:
        self._stopping.clear()
        os.environ.update(LOCAL_CREDENTIALS)
        from moto import settings as moto_settings

        if not moto_settings.DISABLE_GLOBAL_CORS:
            raise RuntimeError("moto was imported before MOTO_DISABLE_GLOBAL_CORS=true was set: import "
                               "pbfm_tooling.local_stack first, or S3 would answer CORS unlike AWS")

        if self.quiet:
            # moto's werkzeug logs every AWS call; our own log is what matters locally.
            logging.getLogger("werkzeug").setLevel(logging.WARNING)

        patch_moto_as_the_embedded_aws()
        moto_port, gateway_port = self._pinned_ports()
        from pbfm_tooling.moto_server import EmbeddedAwsServer

        self._moto = _start_on(lambda: EmbeddedAwsServer("127.0.0.1", moto_port), "moto (the embedded AWS)",
                               moto_port)
        self._moto.start()
        moto_host, moto_port = self._moto.get_host_and_port()
        self.moto_url = f"http://{moto_host}:{moto_port}"
        from pbfm_tooling.aws_gateway import AwsGateway

        # Browsers reach "AWS" only through the gateway: it verifies SigV4 and expiry, and answers
        # in AWS's formats, none of which moto does. The app's own calls go to moto directly.
        self._gateway = AwsGateway(
            self.moto_url,
            access_key=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            secret_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            session_token=LOCAL_CREDENTIALS["AWS_SESSION_TOKEN"],
            region=LOCAL_CREDENTIALS["AWS_DEFAULT_REGION"], port=gateway_port,
        )
        _start_on(self._gateway.start, "the AWS gateway", gateway_port)
        self.gateway_url: str = self._gateway.url

        from chalice_app.application import create_app

        # This stack's own app over this stack's own service: stacks never share (or swap) one.
        self.app = create_app(lambda: self.service)
        self._server = _local_server(self.app, self.host, self.port, quiet=self.quiet, requests=self.requests,
                                     request_seconds=self.request_seconds)
        self.port = self._server.server_address[1]
        origins = [self.base_url] + ([f"http://localhost:{self.port}"] if self.host == "127.0.0.1" else [])

        if self.state is not None:
            self._remember_ports()
        secret = {} if self.state is None or "PBFM_COOKIE_SECRET" in {**os.environ, **self.overrides} \
            else {"PBFM_COOKIE_SECRET": self.state.cookie_secret()}
        env = {**os.environ, **secret, **self.overrides, "PBFM_AWS_ENDPOINT_URL": self.moto_url,
               "PBFM_AWS_PUBLIC_ENDPOINT_URL": self.gateway_url, "PBFM_ALLOWED_ORIGINS": ",".join(origins)}
        written = {k: v for k, v in env.items() if k.startswith("PBFM_")}
        # Put back on stop: a stack started later in the same process (a test run) must not inherit
        # this one's table, prefix, token or base URL through the environment.
        self._environment_before = {k: os.environ.get(k) for k in written}
        os.environ.update(written)
        from chalice_app.aws import build_clients
        from chalice_app.context import build_service
        from chalice_app.settings import Settings
        from pbfm_tooling.resources import create_resources

        self.settings = Settings.from_env(env)
        # Built once per start, for the service and the stack's own saves alike: a boto3 client loads
        # its service model from JSON (about a second of the interpreter for these three).
        self._clients = clients = build_clients(self.settings)
        self.service = build_service(self.settings, clients)
        # The chat view's sandbox reads snapshots and documents by presigned URL too.
        origins = _with_origins_already_allowed(clients.s3, self.settings.bucket_name,
                                                [*origins, *self.settings.view_origins])
        create_resources(clients.s3, clients.dynamodb, table_name=self.settings.table_name,
                         bucket_name=self.settings.bucket_name, region=self.settings.region,
                         cors_origins=origins)
        if self.state is not None:
            if self.fresh:
                self.state.clear()
            self.restored = self.state.restore(clients.s3, clients.dynamodb, table=self.settings.table_name,
                                               bucket=self.settings.bucket_name)
            self._saver = threading.Thread(target=self._save_periodically, name="state-saver", daemon=True)
            self._saver.start()
        self._thread = threading.Thread(target=self._server.serve_forever, name="chalice-local", daemon=True)
        self._thread.start()
        self.sweep_every_s = float(env.get("PBFM_LOCAL_SWEEP_EVERY") or DEFAULT_SWEEP_EVERY_S)
        if self.sweep_every_s > 0:
            self._sweeper = threading.Thread(target=self._sweep_forever, name="local-sweeper", daemon=True)
            self._sweeper.start()
        return self

    def _sweep_forever(self) -> None:
        # What the scheduled sweep does in AWS, off every request's path.
        while not self._stopping.wait(self.sweep_every_s):
            try:
                self.service.sweep_all()
                self.sweeps += 1
            except Exception:
                if self._stopping.is_set():
                    return
                log.exception("local sweep failed")

    # -- the state directory ---------------------------------------------------------------------

    def save(self) -> None:
        """Write the table and the bucket to the state directory now (one save at a time)."""
        clients = self._clients
        if self.state is None or self._moto is None or clients is None:
            return
        with self._save_lock:
            self.state.save(clients.s3, clients.dynamodb, table=self.settings.table_name,
                            bucket=self.settings.bucket_name)

    def _save_periodically(self) -> None:
        while not self._stopping.wait(self.save_every_s):
            try:
                self.save()
            except Exception:
                log.exception("saving the local state failed (the next save tries again)")

    def _forget_aws(self) -> None:
        clients = self._clients
        if clients is None:
            return
        for url in clients.sqs.list_queues(QueueNamePrefix=self.settings.queue_prefix).get("QueueUrls", []):
            clients.sqs.delete_queue(QueueUrl=url)
        clients.dynamodb.delete_table(TableName=self.settings.table_name)
        bucket = self.settings.bucket_name
        for page in clients.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": entry["Key"]} for entry in page.get("Contents", [])]
            if keys:
                clients.s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
        clients.s3.delete_bucket(Bucket=bucket)

    def _pinned_ports(self) -> tuple[int, int]:
        """(moto, gateway) ports: free ones without a state directory, else the same as last time."""
        if self.state is None:
            return 0, 0
        remembered = self._remembered_ports()
        if self.port == 0 and remembered:
            self.port = int(remembered["app"])
        if remembered and int(remembered["app"]) == self.port:
            return int(remembered["moto"]), int(remembered["gateway"])
        return (self.port + 2, self.port + 1) if self.port else (0, 0)

    def _remembered_ports(self) -> dict[str, Any]:
        assert self.state is not None
        try:
            data = json.loads((self.state.path / PORTS_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) and {"app", "moto", "gateway"} <= set(data) else {}

    def _remember_ports(self) -> None:
        assert self.state is not None and self._moto is not None and self._gateway is not None
        self.state.path.mkdir(parents=True, exist_ok=True)
        ports = {"app": self.port, "moto": self._moto.get_host_and_port()[1],
                 "gateway": int(self.gateway_url.rsplit(":", 1)[1])}
        (self.state.path / PORTS_FILE).write_text(json.dumps(ports))

    def restart(self) -> LocalStack:
        """Stop and start again on the same ports and state directory, as Ctrl-C and ``serve`` again do.

        moto servers in one process share their state, so what a process exit would lose is taken
        away here: this stack's queues, table and bucket are deleted once saved; only the state
        directory brings them back. (The chaos run restarts mid-stream this way.)
        """
        if self.state is None:
            raise RuntimeError("a restart keeps nothing without a state directory")
        self.stop(forget_aws=True)
        return self.start()

    def expire_session(self, session_id: str) -> None:
        """What the session's TTL does to it, now: METADATA's ``expires_at`` passes. Every item
        stays, as on moto (which never deletes) and on AWS (whose TTL deletion lags by days)."""
        if self._clients is None:
            raise RuntimeError("the stack is not running")
        from chalice_app.event_store import metadata_key

        self._clients.dynamodb.update_item(
            TableName=self.settings.table_name, Key=metadata_key(session_id), UpdateExpression="SET expires_at = :past",
            ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}})

    def stop(self, *, forget_aws: bool = False) -> None:
        # The app takes no new connection from here, but requests under way may still write: from the
        # save to the end, moto refuses this stack's writes (moto_closing), so each one is either in
        # the saved state or refused, never answered and then lost.
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._stopping.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=30)
            self._sweeper = None
        with self._closing():
            if self._saver is not None:
                self._saver.join(timeout=60)
                self._saver = None
                try:
                    self.save()
                except Exception:
                    log.exception("saving the local state on stop failed")
            if forget_aws and self._moto is not None:
                self._forget_aws()
            for name, value in self._environment_before.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            self._environment_before = {}
            if self._gateway is not None:
                self._gateway.stop()
                self._gateway = None
            if self._moto is not None:
                self._moto.stop()
                self._moto = None

    def _closing(self) -> AbstractContextManager[None]:
        """Writes refused to this stack's table and bucket, when it has a state to save."""
        if self._saver is None:
            return nullcontext()
        return closing(self.settings.table_name, self.settings.bucket_name)

    def __enter__(self) -> LocalStack:
        return self if self._server is not None else self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- addresses -----------------------------------------------------------------------------

    @property
    def gateway_requests(self) -> Counter[str]:
        """Requests browsers made to the local AWS, by service (SQS receives, S3 document reads)."""
        return self._gateway.requests if self._gateway is not None else Counter()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def mcp_url(self) -> str:
        return f"{self.base_url}/mcp"

    def page_url(self, session_id: str) -> str:
        return f"{self.base_url}/session/{session_id}"


def _with_origins_already_allowed(s3: Any, bucket_name: str, origins: list[str]) -> list[str]:
    """Ours plus the bucket's current CORS origins.

    moto keeps one AWS per process, so stacks started in one process (a test run) share the bucket:
    replacing its CORS rule with this stack's origins alone would lock out the pages of a stack
    still running. Origins of stopped stacks stay behind; they are dead loopback ports.
    """
    from botocore.exceptions import ClientError

    try:
        rules = s3.get_bucket_cors(Bucket=bucket_name)["CORSRules"]
    except ClientError:  # no bucket yet, or no CORS rule on it
        rules = []
    allowed = [origin for rule in rules for origin in rule.get("AllowedOrigins", [])]
    return list(dict.fromkeys([*origins, *allowed]))


def _start_on(start: Callable[[], T], what: str, port: int) -> T:
    try:
        return start()
    except OSError as exc:
        if port == 0:
            raise
        raise PortTaken(exc.errno, f"cannot start {what} on port {port} ({exc.strerror}): the state directory "
                        f"keeps it there so open pages survive a restart; stop what uses it, or choose "
                        f"another --port (or --fresh)") from exc


def _local_server(app: Any, host: str, port: int, *, quiet: bool, requests: Counter[str],
                  request_seconds: defaultdict[str, float]) -> Any:
    """Chalice's threaded local server bound now (so a port of 0 is resolved before CORS is set)."""
    from chalice.config import Config
    from chalice.local import ChaliceRequestHandler, CustomLocalChalice, LocalChalice, ThreadedHTTPServer

    if not isinstance(app, LocalChalice):
        # What chalice.local.create_local_server does: a per-thread current_request.
        CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
        app.__class__ = CustomLocalChalice
    config = Config.create(chalice_app=app, app_name="pb-fm-webpage", chalice_stage="local", lambda_timeout=60)

    class Handler(ChaliceRequestHandler):
        # http.server writes headers and body in two send()s: without TCP_NODELAY, Nagle's algorithm
        # and the client's delayed ACK hold every keep-alive response for ~40 ms.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            if not quiet:
                super().log_message(format, *args)

        def parse_request(self) -> bool:
            # From here (the request line has arrived): a keep-alive connection's idle wait before
            # it is not time the request held the server.
            self.started = time.perf_counter()
            parsed = bool(super().parse_request())
            if parsed:
                requests[self.path.split("?", 1)[0]] += 1  # Counter updates are atomic enough under the GIL
            return parsed

        def handle_one_request(self) -> None:
            self.path = ""
            try:
                super().handle_one_request()
            except (BrokenPipeError, ConnectionResetError):
                # A page closed or reloaded during its long poll: nobody is left to answer.
                self.close_connection = True
            finally:
                if self.path:
                    request_seconds[self.path.split("?", 1)[0]] += time.perf_counter() - self.started

    class Server(ThreadedHTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        # socketserver's default backlog of 5 resets connections when many browsers re-poll at once.
        request_queue_size = 128

    def handler(request: Any, client_address: Any, server: Any) -> Handler:
        return Handler(request, client_address, server, app_object=app, config=config)

    return Server((host, port), handler)
