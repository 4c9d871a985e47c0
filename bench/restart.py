"""How long a restart of the local stack takes with a long session in its state directory.

``python -m bench.restart [--events N] [--documents D] [--dir DIR]``: a first process starts a stack on
a state directory and fills a session with N price events (``bench.harness.seed_history``: the
event store's own items by batch writes, the server's own snapshots every ``snapshot_every``,
events referring to a pool of D price documents; ``--documents 0`` publishes every event through the
real operation instead, one document each, which takes ~0.1 s an event here), then stops, which
saves (timed: the periodic save, then the one on stop after 10 more events); a second process starts
on the same directory and is timed until the session answers a join.
Separate processes, as for a user (moto servers in one process share their state). One JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SESSION = "restart-bench"
OVERRIDES = {"PBFM_PRICE_SOURCE": "simulated"}


def _seed(state_dir: Path, events: int, documents: int) -> dict[str, Any]:
    from bench.harness import seed_history
    from chalice_app.operations import webpage_update_hash_price_display
    from pbfm_tooling.local_stack import LocalStack

    stack = LocalStack(overrides=OVERRIDES, state_dir=state_dir, save_every_s=3600).start()
    began = time.monotonic()
    stack.service.create_session(SESSION, None)
    if documents:
        seed_history(stack, SESSION, events, pool=documents)
    else:
        for _ in range(events):
            webpage_update_hash_price_display(SESSION, service=stack.service)
    seeded = time.monotonic() - began
    began = time.monotonic()
    stack.save()  # what the periodic save does while the stack runs
    full_save = time.monotonic() - began
    for _ in range(10):  # the last seconds before Ctrl-C
        webpage_update_hash_price_display(SESSION, service=stack.service)
    began = time.monotonic()
    stack.stop()  # saves
    return {"port": stack.port, "seed_s": round(seeded, 1), "full_save_s": round(full_save, 2),
            "save_on_stop_s": round(time.monotonic() - began, 2)}


def _restore(state_dir: Path, port: int) -> dict[str, Any]:
    import httpx

    began = time.monotonic()
    from pbfm_tooling.local_stack import LocalStack

    stack = LocalStack(port=port, overrides=OVERRIDES, state_dir=state_dir, save_every_s=3600).start()
    started = time.monotonic() - began
    joined = httpx.post(f"{stack.base_url}/api/webpage_join_session", json={"session_id": SESSION}, timeout=120)
    joined.raise_for_status()
    until_join = time.monotonic() - began
    last_seq = stack.service.store.require_session(SESSION).seq
    stack.stop()
    return {"start_with_restore_s": round(started, 2), "restore_s": round(stack.restored.seconds, 2),
            "until_first_join_s": round(until_join, 2), "items": stack.restored.items,
            "documents": stack.restored.objects, "last_seq_after_restart": last_seq,
            "join_last_seq": joined.json()["last_seq"]}


def _child(*args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    out = subprocess.run([sys.executable, "-m", "bench.restart", *args], check=True, capture_output=True,
                         text=True, env=env).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.restart", description=__doc__)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--documents", type=int, default=500, help="price documents the events refer to")
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--phase", choices=["seed", "restore"], default=None, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase == "seed":
        print(json.dumps(_seed(args.dir, args.events, args.documents)))
        return 0
    if args.phase == "restore":
        print(json.dumps(_restore(args.dir, args.port)))
        return 0
    with tempfile.TemporaryDirectory(prefix="pbfm-restart-bench-") as scratch:
        state_dir = args.dir or Path(scratch)  # a state directory of its own unless told, removed after
        seeded = _child("--phase", "seed", "--dir", str(state_dir), "--events", str(args.events),
                        "--documents", str(args.documents))
        restored = _child("--phase", "restore", "--dir", str(state_dir), "--port", str(seeded["port"]))
    print(json.dumps({"events": args.events, "documents_referenced": args.documents, **seeded, **restored}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
