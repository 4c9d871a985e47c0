"""``pbfm-webpage``: serve | demo | bench | deploy."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from pbfm_tooling.local_stack import LocalStack
from pbfm_tooling.state_dir import DEFAULT_STATE_DIR


def _serve(args: argparse.Namespace, *, demo: bool) -> int:
    overrides = {"PBFM_PRICE_SOURCE": args.price_source}
    stop = threading.Event()
    # Explicit handlers: a SIGINT that the parent shell set to "ignore" must still stop us.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stack = LocalStack(host=args.host, port=args.port, overrides=overrides, quiet=not args.verbose,
                       state_dir=args.state_dir, fresh=args.fresh)
    try:
        stack.start()
    except OSError as exc:
        detail = str(exc) if exc.errno is None or exc.strerror is None or "state directory" in str(exc) \
            else f"cannot listen on {args.host}:{args.port}: {exc.strerror}; choose another --port"
        print(detail, file=sys.stderr)
        stack.stop()
        return 1
    with stack:
        print(f"pb-fm-webpage is running on the embedded local AWS (moto at {stack.moto_url})")
        restored = stack.restored
        print(f"  state: {args.state_dir} (restored {restored.items} items and {restored.objects} documents"
              f" in {restored.seconds:.1f}s; saved on Ctrl-C and every {stack.save_every_s:g}s)")
        print(f"  page:  {stack.base_url}/session/<session_id>")
        print(f"  MCP:   {stack.mcp_url}   (streamable HTTP, JSON responses)")
        print(f"  API:   {stack.base_url}/api/openapi.json")
        driver = None
        if demo:
            from pbfm_tooling.ai_driver import PriceDriver

            driver = PriceDriver(stack.mcp_url, args.session, interval_s=args.interval).start()
            print(f"  demo:  open {stack.page_url(args.session)} in several browsers;"
                  f" the built-in assistant updates the price every {args.interval:g}s")
        print("Ctrl-C stops everything.", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            if driver is not None:
                driver.stop()
    print("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # These own their whole command line (argparse.REMAINDER would refuse their --options).
    if argv[:1] == ["bench"]:
        from bench.run import bench_main

        return bench_main(argv[1:])
    if argv[:1] == ["deploy"]:
        from pbfm_tooling.deploy import deploy_main

        return deploy_main(argv[1:])
    parser = argparse.ArgumentParser(prog="pbfm-webpage", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("serve", "run the app on the embedded local AWS"),
                            ("demo", "serve, create session 'demo' and drive it through MCP")):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--host", default="127.0.0.1")
        command.add_argument("--port", type=int, default=8000)
        command.add_argument("--price-source", default="auto", choices=["auto", "simulated", "figure_markets"],
                             help="auto: Figure Markets, falling back to a simulated walk offline")
        command.add_argument("--verbose", action="store_true", help="log every HTTP request")
        command.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                             help="where sessions, events and documents survive restarts (default: %(default)s)")
        command.add_argument("--fresh", action="store_true", help="start with an empty state (the cookie secret stays)")
        if name == "demo":
            command.add_argument("--session", default="demo")
            command.add_argument("--interval", type=float, default=3.0, help="seconds between price updates")
    commands.add_parser("bench", help="measure latency, onboarding and fan-out (bench/README.md)")
    commands.add_parser("deploy", help="package and deploy to AWS with chalice (docs/DEPLOY.md)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("botocore.credentials", "httpx", "httpx2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return _serve(args, demo=args.command == "demo")


if __name__ == "__main__":
    sys.exit(main())
