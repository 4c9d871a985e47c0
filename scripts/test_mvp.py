"""The product's own end-to-end check: real Chromium pages and an AI's MCP calls against a server.

    TEST_SESSION=mvp-test-1 uv run python scripts/test_mvp.py --single-browser
    python scripts/test_mvp.py --multi-browser --late-joiner --base-url http://127.0.0.1:8000

Without ``--base-url`` it uses a server on 127.0.0.1:8000 (`./dev.sh serve`) when one answers, and
otherwise starts the embedded local stack itself; on a fresh clone it first copies the browser
runtime from npm (the page loads nothing from a CDN).

Drives real Chromium (/usr/bin/chromium) and an AI's MCP calls, and prints PASS/FAIL per check.
Exit status 0 only when every check passed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.harness import (  # noqa: E402
    BOOT_TIMEOUT_MS,
    CHROMIUM,
    Browsers,
    chromium,
    shown,
    wait_for_live,
    wait_for_role,
    wait_for_seq,
)
from tests.browser.stack_client import mcp_call, rest_call  # noqa: E402

DEFAULT_URL = "http://127.0.0.1:8000"


class Checks:
    def __init__(self) -> None:
        self.failed = 0
        self.passed = 0

    def check(self, name: str, condition: bool, detail: str = "") -> bool:
        mark = "PASS" if condition else "FAIL"
        print(f"  {mark}  {name}" + (f"  ({detail})" if detail else ""), flush=True)
        if condition:
            self.passed += 1
        else:
            self.failed += 1
        return condition

    def run(self, title: str, scenario: Callable[[], None]) -> None:
        print(f"\n{title}", flush=True)
        try:
            scenario()
        except Exception as exc:
            self.check(f"{title} ran to the end", False, f"{type(exc).__name__}: {exc}")
            traceback.print_exc(limit=3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default=os.environ.get("PBFM_BASE_URL"),
                        help="the server to check (default: 127.0.0.1:8000 if it answers, else a stack of our own)")
    parser.add_argument("--session", default=os.environ.get("TEST_SESSION", "mvp-test-1"))
    parser.add_argument("--single-browser", action="store_true")
    parser.add_argument("--multi-browser", action="store_true")
    parser.add_argument("--late-joiner", action="store_true")
    parser.add_argument("--browsers", type=int, default=4, help="pages for --multi-browser")
    parser.add_argument("--events", type=int, default=50, help="events before the late joiner")
    parser.add_argument("--headed", action="store_true")
    args = parser.parse_args(argv)
    if not (args.single_browser or args.multi_browser or args.late_joiner):
        args.single_browser = args.multi_browser = args.late_joiner = True

    if not Path(CHROMIUM).exists():
        print(f"  FAIL  no Chromium at {CHROMIUM}; `./dev.sh setup` installs Debian's chromium")
        return 1
    with ExitStack() as cleanup:
        base = args.base_url or answering(DEFAULT_URL) or own_stack(cleanup)
        return run_checks(args, base.rstrip("/"))


def answering(url: str) -> str | None:
    try:
        rest_call(url, "webpage_get_session_status", session_id="probe")
    except httpx.HTTPStatusError:
        return url  # a server answered (404: no such session)
    except httpx.TransportError:
        return None
    return url


def own_stack(cleanup: ExitStack) -> str:
    """The embedded local stack on a free port, with the browser runtime in place."""
    if not (ROOT / "web_static" / "vendor" / "pyodide").is_dir():
        print("  ..    copying the browser runtime from npm (first run on this clone)", flush=True)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=ROOT, check=True)
        subprocess.run([sys.executable, str(ROOT / "scripts" / "install_web_assets.py")], cwd=ROOT, check=True)
    from pbfm_tooling.local_stack import LocalStack

    stack = cleanup.enter_context(LocalStack(overrides={"PBFM_PRICE_SOURCE": "simulated"}))
    print(f"  ..    nothing answers at {DEFAULT_URL}: started the embedded local stack at {stack.base_url}")
    return stack.base_url


def run_checks(args: argparse.Namespace, base: str) -> int:
    sid = args.session
    checks = Checks()
    print(f"pb-fm-webpage MVP check against {base}, session {sid!r}")
    try:
        created = rest_call(base, "webpage_create_session", session_id=sid)
    except Exception as exc:
        print(f"  FAIL  the server answers at {base} ({exc}); start it with `./dev.sh serve`")
        return 1
    checks.check("session exists", created["session_id"] == sid, f"created={created['created']}")

    def update() -> tuple[int, str]:
        result = mcp_call(base, "webpage_update_hash_price_display", session_id=sid)
        return int(result["seq"]), str(result["price"]["display_price"])

    def page_url() -> str:
        return f"{base}/session/{sid}"

    def no_external(browsers: Browsers) -> None:
        external = browsers.external_requests()
        checks.check("no request left 127.0.0.1", not external, ", ".join(external[:3]))

    with chromium(headless=not args.headed) as browsers:

        def single() -> None:
            seq, price = update()
            began = time.monotonic()
            page = browsers.open(page_url())
            wait_for_seq(page, seq)
            checks.check("price appears", shown(page).price == price, f"{time.monotonic() - began:.1f} s, ${price}")
            # A master left over from an earlier run is replaced after the heartbeat timeout.
            try:
                wait_for_role(page, "master", timeout_ms=BOOT_TIMEOUT_MS)
            finally:
                checks.check("role is master", shown(page).role == "master", shown(page).role)
            checks.check("connection is live", shown(page).connection == "live")
            fetched = [u for u in browsers.requests if "/prices/" in u and "X-Amz-Signature=" in u]
            checks.check("price came from S3 by reference", bool(fetched), f"{len(fetched)} presigned GETs")
            no_external(browsers)
            page.context.close()

        def multi() -> None:
            pages = [browsers.open(page_url()) for _ in range(args.browsers)]
            for page in pages:
                wait_for_live(page)
            checks.check(f"{args.browsers} browsers live", True)
            timings = []
            for _ in range(3):
                sent = time.monotonic()
                seq, price = update()
                for page in pages:
                    wait_for_seq(page, seq, timeout_ms=20_000)
                timings.append(time.monotonic() - sent)
                facts = [shown(p) for p in pages]
                same = {f.last_seq for f in facts} == {seq} and {f.price for f in facts} == {price}
                checks.check(f"all show seq {seq} and ${price}", same, f"{timings[-1] * 1000:.0f} ms")
            ordered = all(shown(p).applied_twice == 0 for p in pages)
            checks.check("no event applied twice or out of order", ordered)
            masters = sum(shown(p).role == "master" for p in pages)
            checks.check("at most one master among them", masters <= 1, f"{masters}")
            no_external(browsers)
            for page in pages:
                page.context.close()

        def late() -> None:
            first = browsers.open(page_url())
            wait_for_live(first)
            seq = 0
            for _ in range(args.events):
                seq, _ = update()
            wait_for_seq(first, seq)
            began = time.monotonic()
            joiner = browsers.open(page_url())
            wait_for_seq(joiner, seq)
            a, b = shown(first), shown(joiner)
            checks.check("late joiner shows the same seq", a.last_seq == b.last_seq, f"{b.last_seq}")
            checks.check("late joiner shows the same price", a.price == b.price, f"${b.price}")
            checks.check("late joiner draws the same sparkline", a.sparkline == b.sparkline)
            checks.check("no event applied twice", a.applied_twice == b.applied_twice == 0)
            checks.check("caught up", True, f"{time.monotonic() - began:.1f} s including boot")
            no_external(browsers)
            first.context.close()
            joiner.context.close()

        if args.single_browser:
            checks.run("single browser", single)
        if args.multi_browser:
            checks.run(f"{args.browsers} browsers in sync", multi)
        if args.late_joiner:
            checks.run(f"late joiner after {args.events} events", late)

    print(f"\n{checks.passed} passed, {checks.failed} failed")
    return 0 if checks.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
