"""The chaos run: while events stream, browsers join, reload, lose in-flight polls, the master dies
and one browser's live queue is deleted. Afterwards every surviving browser must have every sequence
number exactly once, in order, and the same state as a full replay of the log.

Each simulated person is a page tab running the shipped ``web_py.session_manager.SessionManager``
(``pbfm_tooling.page_runner``): the page's own join, history, live, repair, heartbeat and reconnect
logic, over ``HttpxTransport``. The chaos acts only where a real browser's would: the network cuts
polls after the server received them (``ChaosNetwork``), a tab is closed mid-poll and opened again
(a new ``SessionManager`` over the same cookie jar, tab id and storage, so the real ``restore()``
runs), a tab dies, a queue is deleted on the server. A ledger fed by the loop's ``on_apply`` hook
records every apply (events and snapshots) across reloads; coverage is judged from it:

* lost: a seq up to the final one that no applied event and no applied snapshot covers;
* duplicated: a seq applied as an event more than once (or again after a snapshot covered it);
* out of order: an event applied after a higher seq was applied.

Also (each can be turned off in the plan): every tab carries a foreign cookie that
``SimpleCookie`` cannot parse (``prefs={"theme":"dark"}``) before ours; the session id first lives
a short incarnation that expires under the tabs' feet and is created again (they must drop all of
it and follow the new one from seq 1: ``incarnation`` in the ledger); and with a state directory
the whole stack restarts mid-stream (its queues, table and bucket gone; only the state directory
brings them back), which the pages ride out with their own backoff and rejoin.

A reload starts again from the state the page had saved (``reload`` in the ledger): what the closed
tab applied after its last save is gone with it and must be applied again, so coverage is cut back
to the restored seq there. Snapshots are legitimate coverage: a joiner starts from one, and a
browser whose queue was deleted re-joins and may receive one newer than its state. Those jumps are
counted (``snapshot_skipped``).
"""

from __future__ import annotations

import collections
import contextlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import httpx

from bench.harness import last_seq, price_documents, reference_state
from chalice_app.aws import build_clients
from chalice_app.blobs import generate_key
from chalice_app.settings import Settings
from pbfm_tooling.http_transport import HttpxTransport
from pbfm_tooling.local_stack import LocalStack
from pbfm_tooling.page_runner import PageRunner, Tab
from web_py.messages import Envelope, MessageType
from web_py.page_state import PageState
from web_py.queue_processor import DualQueueProcessor
from web_py.render import View
from web_py.session_manager import HISTORY_WAIT_S, LIVE_WAIT_S, ApiFailure, Metrics, TransportError

CUT_READ_TIMEOUT_S = 0.01  # shorter than any poll's answer: the server receives, the client never sees
JOIN_ATTEMPTS = 40
# Another local app's cookie, sent before ours: ``http.cookies.SimpleCookie`` stops at it.
FOREIGN_COOKIE = ("prefs", '{"theme":"dark"}')
EARLIER_INCARNATION_EVENTS = 10  # the spec's 65 are in tests/*/test_*incarnations.py


@dataclass(frozen=True)
class ChaosPlan:
    events: int = 5000
    rate: float = 20.0
    browsers: int = 4  # present from the start; the first is the master
    joiners: int = 2  # join while events stream
    writers: int = 2  # concurrent publishers (sequence allocation races, sends interleave)
    cuts: int = 5  # polls cut per cut episode
    history_wait_s: int = HISTORY_WAIT_S  # the page's own long-poll waits
    live_wait_s: int = LIVE_WAIT_S
    foreign_cookies: bool = True
    # The first incarnation expires once the tabs applied its events, and the id is created again.
    recreate: bool = True
    restart: bool = True  # needs a stack with a state directory


class ChaosNetwork:
    """The network between one tab and the server: it can cut polls, and it sees heartbeats go out.

    A cut poll reaches the server, which receives messages from the queue for it (they go in
    flight until the visibility timeout), but the answer never reaches the page: the page's loop
    sees a ``TransportError``, as it would from ``fetch``. Every other poll gets through while cuts
    are due, so the page's backoff stays short and the episode lasts a few polls.
    """

    def __init__(self, inner: HttpxTransport) -> None:
        self.inner = inner
        self.to_cut = 0
        self.cut = 0
        self.last_heartbeat = 0.0
        # (sent, answered, status) of every heartbeat on the server's clock (epoch seconds): the
        # failover check needs when each was on the wire, as on a loaded machine one can take seconds.
        self.heartbeats: list[tuple[float, float, int]] = []
        self._let_through = True

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        heartbeat = path.endswith("/webpage_send_heartbeat") or (path.endswith("/webpage_delete_message")
                                                                  and bool(body.get("heartbeat")))
        if heartbeat:
            self.last_heartbeat = time.monotonic()
        if self._cut_now() and path.endswith("/webpage_poll_queue"):
            # A timeout is the usual case; an answer in time is dropped unread all the same.
            with contextlib.suppress(TransportError):
                await self.inner.post(path, body, read_timeout_s=CUT_READ_TIMEOUT_S)
            raise TransportError(f"POST {path}: cut by the chaos run after the server received it")
        if not heartbeat:
            return await self.inner.post(path, body)
        sent = time.time()
        status, answer = await self.inner.post(path, body)
        self.heartbeats.append((sent, time.time(), status))
        return status, answer

    async def get_json(self, url: str) -> tuple[int, Any]:
        return await self.inner.get_json(url)

    async def get_text(self, url: str) -> tuple[int, str | None]:
        """The page's direct long-poll of SQS: cut like a server poll (SQS received, the page never sees)."""
        if self._cut_now():
            with contextlib.suppress(TransportError):
                await self.inner.get_text(url, read_timeout_s=CUT_READ_TIMEOUT_S)
            raise TransportError("GET queue: cut by the chaos run after SQS received it")
        return await self.inner.get_text(url)

    def _cut_now(self) -> bool:
        if self.to_cut <= 0:
            return False
        self._let_through = not self._let_through
        if self._let_through:
            return False
        self.to_cut -= 1
        self.cut += 1
        return True


@dataclass
class Person:
    """One browser tab over time: reloads replace its ``SessionManager``, the ledger stays."""

    name: str
    pages: PageRunner
    session_id: str
    plan: ChaosPlan
    ledger: list[tuple[str, int]] = field(default_factory=list)
    chaos: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dead: bool = False
    stats: collections.Counter[str] = field(default_factory=collections.Counter)

    def __post_init__(self) -> None:
        self.networks: list[ChaosNetwork] = []
        self.processors: list[DualQueueProcessor] = []
        self._joins_seen = 0
        self._incarnation: str | None = None
        self.roles: list[str] = []
        cookies = httpx.Cookies()
        if self.plan.foreign_cookies:
            # Set first, so it is sent before ours (same path).
            cookies.set(*FOREIGN_COOKIE)
        self.tab = self.pages.open(self.session_id, cookies=cookies, wrap=self._network, on_apply=self._on_apply,
                                   history_wait_s=self.plan.history_wait_s, live_wait_s=self.plan.live_wait_s)
        self.tab.manager.on_change = self._on_view
        self.tabs = [self.tab]

    def _network(self, transport: HttpxTransport) -> ChaosNetwork:
        network = ChaosNetwork(transport)
        self.networks.append(network)
        return network

    @property
    def network(self) -> ChaosNetwork:
        return self.networks[-1]

    @property
    def client_id(self) -> str | None:
        return self.tab.client_id

    # -- what the shipped loop tells us ----------------------------------------------------------

    def _on_apply(self, envelope: Envelope, source: str) -> None:
        manager = self.tab.manager
        if manager.incarnation != self._incarnation:
            if self._incarnation is not None:
                # The session id was created again: the page dropped everything of before.
                self.ledger.append(("incarnation", 0))
            self._incarnation = manager.incarnation
        if manager.metrics.joins != self._joins_seen:
            # The loop joined again (its queue was gone): noted at its first apply after that.
            if self._joins_seen:
                self.ledger.append(("join", manager.processor.last_applied))
            self._joins_seen = manager.metrics.joins
        if not self.processors or self.processors[-1] is not manager.processor:
            self.processors.append(manager.processor)
        kind = "snapshot" if envelope.type is MessageType.SNAPSHOT else "event"
        self.ledger.append((kind, envelope.seq))

    def _on_view(self, state: PageState, view: View) -> None:
        # The role the server last told this tab (join, heartbeats), as the page shows it.
        if view.server_role and (not self.roles or self.roles[-1] != view.server_role):
            self.roles.append(view.server_role)

    # -- what happens to the tab -----------------------------------------------------------------

    def join(self) -> None:
        """Join before the loop starts (the first one must be master); the loop itself would retry."""
        for attempt in range(JOIN_ATTEMPTS):
            try:
                self.tab.join()
                return
            except (ApiFailure, TransportError) as exc:
                if attempt == JOIN_ATTEMPTS - 1:
                    raise
                self.stats["join_retries"] += 1
                self.chaos.append(f"join retry: {str(exc)[:60]}")
                time.sleep(0.25)

    def start(self) -> None:
        self.tab.start()

    def cut_polls(self, count: int) -> None:
        self.network.to_cut += count
        self.chaos.append(f"{count} polls to cut")

    def reload(self) -> None:
        """Close the tab wherever its loop is (mostly mid-poll) and open it again from its storage."""
        self._note_failure(self.tab)
        self.tab = self.tab.reload()
        self.tab.manager.on_change = self._on_view
        self.tabs.append(self.tab)
        self._joins_seen = 0
        restored = self.tab.manager.metrics.restored_seq
        self.ledger.append(("reload", restored))
        self.chaos.append(f"reload at seq {restored}")
        self.tab.start()

    def kill(self) -> None:
        self._note_failure(self.tab)
        self.dead = True
        self.tab.kill()

    def _note_failure(self, tab: Tab) -> None:
        if tab.failure is not None:
            self.errors.append(f"the page's loop failed: {tab.failure!r}"[:300])

    def finish(self) -> None:
        self._note_failure(self.tab)
        if not self.dead and not self.tab.running:
            self.errors.append(f"the page's loop stopped at seq {self.tab.last_seq}")
        malformed = sum(t.manager.metrics.malformed for t in self.tabs)
        if malformed:
            self.errors.append(f"{malformed} malformed messages dropped")

    def report(self, final: int, start: int) -> dict[str, Any]:
        rejoins = [seq for kind, seq in self.ledger if kind == "join"]
        processor = collections.Counter[str]()
        for p in self.processors:
            processor.update(asdict(p.stats))
        metrics = collections.Counter[str]()
        for tab in self.tabs:
            metrics.update({f.name: getattr(tab.manager.metrics, f.name) for f in fields(Metrics)})
        return {"client_id": self.client_id, "role_history": "→".join(self.roles),
                **coverage(self.ledger, final, start), "joins_again_at_seq": rejoins,
                "reloads": len(self.tabs) - 1, "chaos": self.chaos[:12], "cuts": sum(n.cut for n in self.networks),
                "errors": self.errors[:5], "dead": self.dead, "processor": dict(processor),
                "loop": {k: metrics[k] for k in ("joins", "reconnects", "repairs", "polls", "heartbeats",
                                                  "applied_from_history", "applied_from_live",
                                                  "applied_from_repair", "direct_polls", "renewals",
                                                  "refused_receives", "inline_documents")},
                **dict(self.stats)}


def coverage(ledger: list[tuple[str, int]], final: int, start: int = 1) -> dict[str, int]:
    """Judge one browser's applies against 1..final (``start``: the first seq it must have itself)."""
    covered: set[int] = set(range(1, start))
    counts: collections.Counter[int] = collections.Counter()
    highest = 0
    out_of_order = duplicated = skipped = snapshots = 0
    for kind, seq in ledger:
        if kind == "join":
            continue
        if kind == "incarnation":
            # The session id was re-created: coverage starts again, at seq 1 of the new log.
            covered, highest = set(range(1, start)), 0
            counts.clear()
            continue
        if kind == "reload":
            # The page restarts from the state it had saved at ``seq``: later applies left with the tab.
            covered = {s for s in covered if s <= seq}
            highest = seq
            continue
        if kind == "snapshot":
            snapshots += 1
            new = set(range(1, seq + 1)) - covered
            if highest and seq > highest:
                skipped += len(new)
            covered |= new
            highest = max(highest, seq)
            continue
        counts[seq] += 1
        if seq in covered:
            duplicated += 1
        if seq < highest:
            out_of_order += 1
        covered.add(seq)
        highest = max(highest, seq)
    lost = sum(1 for seq in range(1, final + 1) if seq not in covered)
    return {"applied": sum(counts.values()), "snapshots": snapshots, "lost": lost, "duplicated": duplicated,
            "out_of_order": out_of_order, "snapshot_skipped": skipped, "last": highest}


class Writer(threading.Thread):
    """Publishes events at its share of the rate (prices, with a layout every 20th)."""

    def __init__(self, stack: LocalStack, session_id: str, keys: list[str], layouts: list[str], count: int,
                 rate: float, offset: float) -> None:
        super().__init__(name="chaos-writer", daemon=True)
        self.stack, self.session_id, self.keys, self.layouts = stack, session_id, keys, layouts
        self.count, self.rate, self.offset = count, rate, offset
        self.published: list[int] = []
        self.errors: list[str] = []
        # Every other event carries its document inline (as the MCP tools publish them), the rest
        # by reference only: both ways of delivery meet the same chaos.
        self.documents = {key: stack.service.blobs.get_json(key) for key in {*keys, *layouts}}
        self.running = threading.Event()  # cleared while the stack restarts
        self.running.set()
        self.busy = threading.Lock()  # held while publishing

    def run(self) -> None:
        start = time.monotonic() + self.offset
        for i in range(self.count):
            delay = start + i / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.running.wait()
            with self.busy:
                self._publish(i)

    def _publish(self, i: int) -> None:
        try:
            kind, key = (MessageType.LAYOUT_UPDATE, self.layouts[i % len(self.layouts)]) if i % 20 == 0 \
                else (MessageType.PRICE_UPDATE, self.keys[i % len(self.keys)])
            delivery = self.stack.service.publish(self.session_id, kind, s3_key=key,
                                                  document=self.documents[key] if i % 2 else None)
            self.published.append(delivery.seq)
        except Exception as exc:
            self.errors.append(repr(exc)[:200])


def _layouts(stack: LocalStack, session_id: str, count: int) -> list[str]:
    keys = []
    for i in range(count):
        key = generate_key("layout", session_id)
        stack.service.blobs.put_json(key, {"title": f"chaos {i}", "blocks": [
            {"kind": "price_card"}, {"kind": "text", "text": f"layout {i}", "style": "paragraph"}]})
        keys.append(key)
    return keys


def run_chaos(stack: LocalStack, plan: ChaosPlan, progress: Callable[[str], None] = lambda _: None
              ) -> dict[str, Any]:
    with PageRunner(stack.base_url) as pages:
        return _run(stack, pages, plan, progress)


def _run(stack: LocalStack, pages: PageRunner, plan: ChaosPlan, progress: Callable[[str], None]) -> dict[str, Any]:
    settings = stack.settings
    restart = plan.restart and stack.state is not None
    session_id = f"chaos-{secrets.token_hex(5)}"
    keys, layouts = price_documents(stack, session_id, 40), _layouts(stack, session_id, 5)
    stack.service.create_session(session_id, "chaos")
    timeline: list[str] = []
    t0 = time.monotonic()

    def mark(text: str) -> None:
        timeline.append(f"{time.monotonic() - t0:.1f}s {text}")
        progress(text)

    people = [Person(f"tab{i}", pages, session_id, plan) for i in range(plan.browsers)]
    for person in people:
        person.join()
        person.start()
    mark(f"{plan.browsers} browsers joined" + (" (a foreign cookie before ours)" if plan.foreign_cookies else ""))
    if plan.recreate:
        _expire_and_recreate(stack, session_id, people, keys, mark)
    session = stack.service.store.require_session(session_id)
    master = next(p for p in people if p.client_id == session.master_client_id)
    mark(f"master {master.name} ({master.client_id})")

    per_writer = plan.events // plan.writers
    writers = [Writer(stack, session_id, keys, layouts, per_writer + (plan.events % plan.writers if w == 0 else 0),
                      plan.rate / plan.writers, offset=w / plan.rate) for w in range(plan.writers)]
    stream_started = time.monotonic()
    for writer in writers:
        writer.start()

    def published() -> int:
        return sum(len(w.published) for w in writers)

    def at(fraction: float) -> None:
        while published() < fraction * plan.events and any(w.is_alive() for w in writers):
            time.sleep(0.02)

    sqs = build_clients(settings).sqs
    joiners: list[Person] = []
    failover: dict[str, Any] = {}
    victim = next(p for p in reversed(people) if p is not master)

    def current_master() -> Person:
        # A restart can hand the role on (every heartbeat is old when the stack comes back): ask.
        master_id = stack.service.store.require_session(session_id).master_client_id
        return next((p for p in people + joiners if p.client_id == master_id and not p.dead), master)

    def is_back(person: Person) -> bool:
        """Registered in the session's current incarnation, with its live queue: a publish keeps it."""
        session = stack.service.store.require_session(session_id)
        record = stack.service.store.get_client(session_id, person.client_id or "")
        return record is not None and record.active and record.incarnation == session.incarnation \
            and session.master_client_id == person.client_id and stack.service.queues.exists(record.live_queue_url)

    def join_one() -> None:
        person = Person(f"joiner{len(joiners)}", pages, session_id, plan)
        person.join()
        person.start()
        joiners.append(person)

    def kill_master() -> None:
        nonlocal master, victim
        # After a restart the master may not have joined again yet. Its queue is gone, so the next
        # publish removes it (a browser whose queue vanished is gone: SessionService.publish) and the
        # sweep replaces it at once, as it does a master that left. Killing it then would test the
        # failover of a silent master not at all: wait until the master is back.
        deadline = time.monotonic() + 90
        while not is_back(current_master()):
            assert time.monotonic() < deadline, "no master came back after the restart"
            time.sleep(0.1)
        master = current_master()
        if victim is master:
            victim = next(p for p in reversed(people) if p is not master)
        master.kill()
        failover["master_last_heartbeat_monotonic"] = master.network.last_heartbeat
        failover["old_master"] = master.client_id
        failover["master_heartbeat_epoch"] = stack.service.store.require_session(session_id).master_heartbeat
        failover["observers"] = [p for p in people + joiners if p is not master and not p.dead]

    def delete_victim_queue() -> None:
        record = stack.service.store.get_client(session_id, victim.client_id or "")
        assert record is not None
        # After a restart the page may not have joined again yet (its backoff), so its queue is
        # still gone: deleting it then would test nothing. Wait until it is back.
        deadline = time.monotonic() + 90
        while not stack.service.queues.exists(record.live_queue_url):
            assert time.monotonic() < deadline, f"{victim.name}'s live queue never came back"
            time.sleep(0.1)
        sqs.delete_queue(QueueUrl=record.live_queue_url)
        victim.chaos.append("live queue deleted")
        mark(f"deleted the live queue of {victim.name}")

    def observer(index: int) -> Person:
        """One of the first tabs, alive and not master when the action comes: a restart can hand
        the role to any of them, and the one killed as master must stay dead (reloading it would
        bring it back under the same id, and the sweep would never remove it)."""
        living = [p for p in people if p is not current_master() and not p.dead]
        return living[index % len(living)]

    def cut_polls(index: int) -> str:
        person = observer(index)
        person.cut_polls(plan.cuts)
        return person.name

    def reload(index: int, *, cut: bool = False) -> str:
        person = observer(index)
        person.reload()
        if cut:
            person.cut_polls(plan.cuts)
        return person.name

    def restart_stack() -> None:
        for writer in writers:
            writer.running.clear()
        for writer in writers:
            writer.busy.acquire()
        began = time.monotonic()
        try:
            stack.restart()
        finally:
            for writer in writers:
                writer.busy.release()
                writer.running.set()
        mark(f"stack restarted in {time.monotonic() - began:.1f}s (restored {stack.restored.items} items, "
             f"{stack.restored.objects} documents in {stack.restored.seconds:.1f}s)")

    # (when, what happened: "{}" is the tab the action chose, the action)
    schedule: list[tuple[float, str, Callable[[], str | None]]] = [
        (0.10, "joiner 0 joins", join_one),
        (0.20, "cut polls of {}", lambda: cut_polls(0)),
        (0.30, "reload {} mid-poll", lambda: reload(1)),
        (0.40, "master dies (no heartbeat, no poll)", kill_master),
        (0.55, "joiner 1 joins", join_one),
        (0.65, "delete a live queue of an observer", delete_victim_queue),
        (0.75, "reload {} mid-poll and cut its polls", lambda: reload(0, cut=True)),
        (0.85, "cut polls of joiner 0", lambda: joiners[0].cut_polls(plan.cuts) if joiners else None),
    ][: 2 + plan.joiners + 4]
    if restart:
        schedule.insert(2, (0.25, "restart the stack (Ctrl-C, serve again)", restart_stack))
    for fraction, label, action in schedule:
        at(fraction)
        chosen = action()
        mark(f"{label.format(chosen)} (after {published()} events)")
        if label.startswith("master dies"):
            threading.Thread(target=_watch_failover, args=(stack, session_id, failover, mark), daemon=True).start()

    for writer in writers:
        writer.join()
    stream_s = time.monotonic() - stream_started
    mark(f"stream done: {published()} events in {stream_s:.1f}s")

    # Let the sweep remove the dead master (a PARTICIPANTS event), then let every survivor catch up
    # with the final sequence (re-read until nothing more is appended).
    survivors = [p for p in people + joiners if not p.dead]
    deadline = time.monotonic() + settings.stale_after_s + 4 * settings.heartbeat_interval_s + 2
    while True:
        record = stack.service.store.get_client(session_id, master.client_id or "")
        if record is not None and not record.active:
            mark("dead master removed by the sweep")
            break
        if time.monotonic() >= deadline:
            silent_s = None if record is None else round(time.time() - record.last_heartbeat, 1)
            mark(f"dead master {master.client_id} NOT removed: record {'missing' if record is None else 'active'}"
                 f", last heartbeat {silent_s} s ago, {stack.sweeps} sweeps by the stack")
            break
        time.sleep(0.2)
    final = last_seq(stack, session_id)
    catch_up_deadline = time.monotonic() + 2 * settings.queue_visibility_timeout_s + plan.live_wait_s + 30
    # The log is final once nothing was appended for longer than a coalesced participant list may
    # wait (it goes out with a heartbeat after its window): the last roster change may still be due.
    settle_s = settings.participants_every_s + 2 * settings.heartbeat_interval_s
    behind, quiet_since = survivors, time.monotonic()
    while time.monotonic() < catch_up_deadline:
        behind = [p for p in survivors if p.tab.last_seq < final]
        now_seq = last_seq(stack, session_id)
        if now_seq != final:
            final, quiet_since = now_seq, time.monotonic()
        elif not behind and time.monotonic() - quiet_since >= settle_s:
            break
        time.sleep(0.1)
    mark(f"survivors caught up to {final}" if not behind else f"NOT caught up: {[p.name for p in behind]}")
    for person in people + joiners:
        person.finish()
    for person in people + joiners:
        person.tab.kill()

    reference = reference_state(stack, session_id)
    starts = {p.name: _first_seq(p.ledger) for p in joiners}
    reports = {p.name: p.report(final if not p.dead else p.tab.last_seq, starts.get(p.name, 1))
               for p in people + joiners}
    states = [p.tab.state for p in survivors]
    lost = sum(reports[p.name]["lost"] for p in survivors)
    duplicated = sum(r["duplicated"] for r in reports.values())
    out_of_order = sum(r["out_of_order"] for r in reports.values())
    errors = [e for p in people + joiners for e in p.errors] + [e for w in writers for e in w.errors]
    if "promoted_monotonic" in failover:
        failover.update(_failover_timing(failover, settings))
    ok = (lost == 0 and duplicated == 0 and out_of_order == 0 and not behind
          and all(s == reference for s in states) and "failover_s" in failover)
    return {
        "plan": asdict(plan), "session_id": session_id, "events_published": published(),
        "rate_achieved": round(published() / stream_s, 1), "final_seq": final,
        "survivors": [p.name for p in survivors], "identical_state": all(s == states[0] for s in states),
        "equals_replay": all(s == reference for s in states), "lost": lost, "duplicated": duplicated,
        "differs_from_replay": {p.name: _differences(p.tab.state, reference) for p in survivors
                                if p.tab.state != reference},
        "out_of_order": out_of_order,
        "failover": {k: v for k, v in failover.items()
                     if not k.endswith(("_monotonic", "_epoch")) and k != "observers"},
        "browsers": reports, "timeline": timeline, "errors": errors[:20], "ok": ok and not errors,
        "client": "web_py.session_manager.SessionManager (the page's loop) over pbfm_tooling.http_transport",
        "settings": {"heartbeat_timeout_s": settings.heartbeat_timeout_s,
                     "heartbeat_interval_s": settings.heartbeat_interval_s, "stale_after_s": settings.stale_after_s,
                     "queue_visibility_timeout_s": settings.queue_visibility_timeout_s,
                     "snapshot_every": settings.snapshot_every},
    }


def _expire_and_recreate(stack: LocalStack, session_id: str, people: list[Person], keys: list[str],
                         mark: Callable[[str], None]) -> None:
    """The spec's reproduction under the tabs' feet: a short log, expiry, the id created again.

    Every tab must drop the earlier incarnation and follow the new one from seq 1.
    """
    old = stack.service.store.require_session(session_id, active=False)
    for i in range(EARLIER_INCARNATION_EVENTS):
        old_seq = stack.service.publish(session_id, MessageType.PRICE_UPDATE, s3_key=keys[i % len(keys)]).seq
        deadline = time.monotonic() + 10
        while any(p.tab.last_seq < old_seq for p in people) and time.monotonic() < deadline:
            time.sleep(0.05)
    # Its TTL passes now, not after a wait: the state the clock would bring.
    stack.expire_session(session_id)
    assert stack.service.store.get_session(session_id) is None
    record, created = stack.service.create_session(session_id, "chaos")
    assert created and record.incarnation != old.incarnation
    mark(f"incarnation {old.incarnation} (tabs at seq {[p.tab.last_seq for p in people]}) expired; "
         f"created again as {record.incarnation}")
    deadline = time.monotonic() + 90
    while any(p.tab.manager.incarnation != record.incarnation or p.tab.manager.processor.phase != "live"
              for p in people):
        assert time.monotonic() < deadline, "the tabs did not follow the new incarnation"
        time.sleep(0.05)
    mark("every tab follows the new incarnation")


def _differences(state: PageState, reference: PageState) -> dict[str, str]:
    """The fields in which a page's final state differs from the full replay's (for a failure's report)."""
    return {name: f"{getattr(state, name)!r:.200} != {getattr(reference, name)!r:.200}"
            for name in (f.name for f in fields(PageState)) if getattr(state, name) != getattr(reference, name)}


def _first_seq(ledger: list[tuple[str, int]]) -> int:
    """Where a joiner's own coverage starts: its first snapshot, or its first event."""
    for kind, seq in ledger:
        if kind == "snapshot":
            return seq + 1
        if kind == "event":
            return seq
    return 1


def _failover_timing(failover: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """When the promotion came, against when it could and should have come.

    The server promotes when it handles an observer heartbeat (or its sweep runs) after the master
    has been silent for the timeout, at most one such check per half interval. So the promotion may
    not come before the master's last heartbeat (the server's own record) plus the timeout, and must
    have come by the answer to the first observer heartbeat sent half an interval after that
    deadline. The promotion's time is the ROLE_CHANGE event's, stamped by the server; the heartbeats
    are measured on the wire. So the check holds on a slow machine as on a fast one; ``failover_s``
    is the wall time a person saw.
    """
    deadline = failover["master_heartbeat_epoch"] + settings.heartbeat_timeout_s
    promoted = failover["promoted_epoch"]
    due = deadline + settings.heartbeat_interval_s / 2
    answered = [answered for person in failover["observers"] for network in person.networks
                for sent, answered, status in network.heartbeats if sent >= due and status == 200]
    first_due = min(answered, default=None)
    # The heartbeat that took the failover's lease (sent shortly before or after the deadline) may
    # be slower than the first one answered after `due`, which then saw the lease taken and left the
    # promotion to it: the slowest round trip of the beats sent from an interval before the deadline
    # to that answer says how much later the promotion may come.
    round_trips = [] if first_due is None else [
        answered - sent for person in failover["observers"] for network in person.networks
        for sent, answered, _ in network.heartbeats if deadline - settings.heartbeat_interval_s <= sent <= first_due]
    # What each observer's heartbeats did around the deadline, for a failure to explain itself.
    beats = {person.name: [(round(sent - deadline, 2), round(answered - sent, 2), status)
                           for network in person.networks for sent, answered, status in network.heartbeats
                           if -8 <= sent - deadline <= 12]
             for person in failover["observers"]}
    return {
        "observer_heartbeats": beats,
        "failover_s": round(failover["promoted_monotonic"] - failover["master_last_heartbeat_monotonic"], 2),
        "heartbeat_timeout_s": settings.heartbeat_timeout_s,
        "promoted_after_deadline_s": round(promoted - deadline, 2),
        # Positive: it came only after an answered heartbeat that should have made it (a heartbeat
        # that promotes is answered after the ROLE_CHANGE is stored).
        "late_by_s": None if first_due is None else round(promoted - first_due, 2),
        "slowest_round_trip_s": round(max(round_trips, default=0.0), 2),
    }


def _watch_failover(stack: LocalStack, session_id: str, failover: dict[str, Any],
                    mark: Callable[[str], None]) -> None:
    old = failover["old_master"]
    deadline = time.monotonic() + 10 * stack.settings.heartbeat_timeout_s + 10
    while time.monotonic() < deadline:
        session = stack.service.store.get_session(session_id)
        if session is not None and session.master_client_id == old:
            # The server's record of the old master's last beat (one in flight at the kill may land late).
            failover["master_heartbeat_epoch"] = session.master_heartbeat
        if session is not None and session.master_client_id != old:
            failover["promoted_monotonic"] = time.monotonic()
            # When the server promoted, by its own clock: this watcher's reads wait on a busy stack.
            role_changes = [e for e in stack.service.store.events_after(session_id, 0)
                            if e.type == MessageType.ROLE_CHANGE
                            and (e.payload or {}).get("previous_master_client_id") == old
                            and (e.payload or {}).get("master_client_id") == session.master_client_id]
            failover["promoted_epoch"] = role_changes[-1].ts if role_changes else time.time()
            failover["new_master"] = session.master_client_id
            mark(f"failover: {session.master_client_id} promoted")
            return
        time.sleep(0.02)
