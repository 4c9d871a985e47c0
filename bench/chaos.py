"""The chaos run: while events stream, browsers join, reload, lose in-flight polls, the master dies
and one browser's live queue is deleted. Afterwards every surviving browser must have every sequence
number exactly once, in order, and the same state as a full replay of the log.

Each simulated person runs the page's own ``DualQueueProcessor`` and reducer (``HeadlessBrowser``)
in its own thread. A ledger records every apply (events and snapshots) across reloads; coverage is
judged from it:

* lost: a seq up to the final one that no applied event and no applied snapshot covers;
* duplicated: a seq applied as an event more than once (or again after a snapshot covered it);
* out of order: an event applied after a higher seq was applied.

Snapshots are legitimate coverage: a joiner starts from one, and a browser whose queue was deleted
re-joins and may receive one newer than its state. Those jumps are counted (``snapshot_skipped``).
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from bench.harness import last_seq, new_session, price_documents, reference_state
from chalice_app.aws import build_clients
from chalice_app.blobs import generate_key
from pbfm_tooling.headless_browser import HeadlessBrowser, JoinFailed
from pbfm_tooling.local_stack import LocalStack
from web_py import page_state
from web_py.messages import MessageType
from web_py.queue_processor import Apply, Decision, DualQueueProcessor

CUT_READ_TIMEOUT_S = 0.01  # shorter than any poll's answer: the server receives, the client never sees


@dataclass(frozen=True)
class ChaosPlan:
    events: int = 5000
    rate: float = 20.0
    browsers: int = 4  # present from the start; the first is the master
    joiners: int = 2  # join while events stream
    writers: int = 2  # concurrent publishers (sequence allocation races, sends interleave)
    cuts: int = 5  # in-flight polls cut per cut episode
    step_wait_s: int = 1


class LedgerBrowser(HeadlessBrowser):
    """A HeadlessBrowser that also records snapshot applies, in one ledger kept across reloads."""

    ledger: list[tuple[str, int]]
    joins = 0

    def join(self) -> dict[str, Any]:
        # Also reached from step() on a 410: the queue is gone, so the browser registers again.
        self.joins += 1
        if self.joins > 1:
            self.ledger.append(("join", self.processor.last_applied))
        return super().join()

    def _settle(self, decision: Decision, acks: list[str]) -> None:
        super()._settle(decision, acks)
        if isinstance(decision, Apply):
            kind = "snapshot" if decision.envelope.type is MessageType.SNAPSHOT else "event"
            self.ledger.append((kind, decision.envelope.seq))


@dataclass
class Person:
    """One browser tab over time: reloads replace its HeadlessBrowser, the ledger stays."""

    name: str
    stack: LocalStack
    session_id: str
    step_wait_s: int
    ledger: list[tuple[str, int]] = field(default_factory=list)
    chaos: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cuts_done: int = 0
    rejoins: int = 0
    last_heartbeat: float = 0.0
    heartbeating: bool = True
    dead: bool = False
    stats: collections.Counter[str] = field(default_factory=collections.Counter)

    def __post_init__(self) -> None:
        self.browser = self._new_browser(httpx.Cookies())
        self.actions: collections.deque[tuple[str, int]] = collections.deque()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"chaos-{self.name}", daemon=True)

    def _new_browser(self, cookies: httpx.Cookies, state: page_state.PageState | None = None) -> LedgerBrowser:
        http = httpx.Client(base_url=self.stack.base_url, timeout=40, cookies=cookies)
        browser = LedgerBrowser(self.stack.base_url, self.session_id, http=http)
        browser.ledger = self.ledger
        if state is not None:  # what the page restores from sessionStorage
            browser.state = state
            browser.processor = DualQueueProcessor(state.last_seq, session_id=self.session_id)
        return browser

    @property
    def client_id(self) -> str | None:
        return self.browser.client_id

    def join(self) -> None:
        for attempt in range(40):
            try:
                self.browser.join()
                self._note_role(self.browser.role)
                return
            except (JoinFailed, httpx.HTTPError) as exc:
                if attempt == 39:
                    raise
                self.stats["join_retries"] += 1
                self.chaos.append(f"join retry: {str(exc)[:60]}")
                time.sleep(0.25)

    def _note_role(self, role: str | None) -> None:
        if role and (not self.roles or self.roles[-1] != role):
            self.roles.append(role)

    # -- the tab's loop --------------------------------------------------------------------------

    def _run(self) -> None:
        interval = self.stack.settings.heartbeat_interval_s
        while not self.stop.is_set():
            try:
                if self.actions:
                    self._act(*self.actions.popleft())
                if self.heartbeating and time.monotonic() - self.last_heartbeat >= interval:
                    self.last_heartbeat = time.monotonic()
                    self._note_role(self.browser.heartbeat()["role"])
                self.browser.step(wait_seconds=self.step_wait_s)
            except JoinFailed as exc:
                # 410 on a heartbeat: this browser was removed (its queue failed); join again.
                self.stats["rejoins"] += 1
                self.chaos.append(f"rejoin after {str(exc)[:40]}")
                self._rejoin()
            except httpx.HTTPError as exc:
                self.errors.append(repr(exc)[:200])
                time.sleep(0.1)
            except Exception as exc:  # anything else is a finding: keep it, keep going
                self.errors.append(repr(exc)[:300])
                time.sleep(0.1)
        self.browser.close()

    def _rejoin(self) -> None:
        try:
            self.join()
        except Exception as exc:
            self.errors.append(f"rejoin failed: {exc!r}"[:300])

    def _act(self, action: str, count: int) -> None:
        if action == "cut":
            for _ in range(count):
                self._cut_poll()
        elif action == "reload":
            self._reload()

    def _cut_poll(self) -> None:
        """A poll the server answers but the client never reads: its messages go in flight."""
        queue = self.browser.processor.queue_to_poll()
        timeout = httpx.Timeout(5.0, read=CUT_READ_TIMEOUT_S)
        with httpx.Client(base_url=self.stack.base_url, timeout=timeout, cookies=self.browser.http.cookies) as http:
            try:
                http.post("/api/webpage_poll_queue", json={"session_id": self.session_id, "queue": queue,
                                                           "wait_seconds": self.step_wait_s, "max_messages": 10})
            except httpx.TimeoutException:
                self.cuts_done += 1
            else:
                self.cuts_done += 1  # answered in time, but dropped unread all the same
        self.chaos.append(f"cut {queue} poll")

    def _reload(self) -> None:
        """Close the tab mid-poll and open it again: same cookie, state restored, processor resumed."""
        old = self.browser
        state = page_state.PageState.from_dict(old.state.to_dict())
        queue = old.processor.queue_to_poll()
        # The old tab's last poll is still on the wire when it goes away.
        abandoned = threading.Thread(target=_quietly, args=(old.http.post, "/api/webpage_poll_queue"), kwargs={
            "json": {"session_id": self.session_id, "queue": queue, "wait_seconds": self.step_wait_s}}, daemon=True)
        abandoned.start()
        time.sleep(0.005)
        self.browser = self._new_browser(httpx.Cookies(old.http.cookies), state)
        self.join()
        self.chaos.append(f"reload at seq {state.last_seq}")
        abandoned.join(timeout=5)
        old.close()

    def report(self, final: int, start: int) -> dict[str, Any]:
        rejoins = [seq for kind, seq in self.ledger if kind == "join"]
        return {"client_id": self.client_id, "role_history": "→".join(self.roles),
                **coverage(self.ledger, final, start), "joins_again_at_seq": rejoins,
                "chaos": self.chaos[:12], "cuts": self.cuts_done, "errors": self.errors[:5], "dead": self.dead,
                "processor": asdict(self.browser.processor.stats), **dict(self.stats)}


def _quietly(call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    with contextlib.suppress(Exception):
        call(*args, **kwargs)


def coverage(ledger: list[tuple[str, int]], final: int, start: int = 1) -> dict[str, int]:
    """Judge one browser's applies against 1..final (``start``: the first seq it must have itself)."""
    covered: set[int] = set(range(1, start))
    counts: collections.Counter[int] = collections.Counter()
    highest = 0
    out_of_order = duplicated = skipped = snapshots = 0
    for kind, seq in ledger:
        if kind == "join":
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

    def run(self) -> None:
        start = time.monotonic() + self.offset
        for i in range(self.count):
            delay = start + i / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            try:
                if i % 20 == 0:
                    delivery = self.stack.service.publish(self.session_id, MessageType.LAYOUT_UPDATE,
                                                          s3_key=self.layouts[i % len(self.layouts)])
                else:
                    delivery = self.stack.service.publish(self.session_id, MessageType.PRICE_UPDATE,
                                                          s3_key=self.keys[i % len(self.keys)])
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
    settings = stack.settings
    session_id = new_session(stack, "chaos")
    keys, layouts = price_documents(stack, session_id, 40), _layouts(stack, session_id, 5)
    timeline: list[str] = []
    t0 = time.monotonic()

    def mark(text: str) -> None:
        timeline.append(f"{time.monotonic() - t0:.1f}s {text}")
        progress(text)

    people = [Person(f"tab{i}", stack, session_id, plan.step_wait_s) for i in range(plan.browsers)]
    for person in people:
        person.join()
        person.thread.start()
    master = people[0]
    assert master.browser.role == "master", master.browser.role
    mark(f"{plan.browsers} browsers joined; master {master.client_id}")

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
    victim = people[3 % len(people)]
    schedule: list[tuple[float, str, Callable[[], None]]] = []

    def join_one() -> None:
        person = Person(f"joiner{len(joiners)}", stack, session_id, plan.step_wait_s)
        person.join()
        person.thread.start()
        joiners.append(person)

    def kill_master() -> None:
        master.heartbeating = False
        master.dead = True
        master.stop.set()
        failover["master_last_heartbeat_monotonic"] = master.last_heartbeat
        failover["old_master"] = master.client_id

    def delete_victim_queue() -> None:
        record = stack.service.store.get_client(session_id, victim.client_id or "")
        assert record is not None
        sqs.delete_queue(QueueUrl=record.live_queue_url)
        victim.chaos.append("live queue deleted")

    schedule = [
        (0.10, "joiner 0 joins", join_one),
        (0.20, "cut polls of tab1", lambda: people[1].actions.append(("cut", plan.cuts))),
        (0.30, "reload tab2 mid-poll", lambda: people[2].actions.append(("reload", 1))),
        (0.40, "master dies (no heartbeat, no poll)", kill_master),
        (0.55, "joiner 1 joins", join_one),
        (0.65, f"delete live queue of {victim.name}", delete_victim_queue),
        (0.75, "reload tab1 mid-poll and cut its polls", lambda: people[1].actions.extend(
            [("reload", 1), ("cut", plan.cuts)])),
        (0.85, "cut polls of joiner 0", lambda: joiners[0].actions.append(("cut", plan.cuts)) if joiners else None),
    ][: 2 + plan.joiners + 4]
    for fraction, label, action in schedule:
        at(fraction)
        action()
        mark(f"{label} (after {published()} events)")
        if label.startswith("master dies"):
            threading.Thread(target=_watch_failover, args=(stack, session_id, failover, mark), daemon=True).start()

    for writer in writers:
        writer.join()
    stream_s = time.monotonic() - stream_started
    mark(f"stream done: {published()} events in {stream_s:.1f}s")

    # Let the sweep remove the dead master (a PARTICIPANTS event), then stop heartbeats so nothing
    # else is appended, and let every survivor catch up with the final sequence.
    survivors = [p for p in people + joiners if not p.dead]
    deadline = time.monotonic() + settings.stale_after_s + 4 * settings.heartbeat_interval_s + 2
    while time.monotonic() < deadline:
        record = stack.service.store.get_client(session_id, master.client_id or "")
        if record is not None and not record.active:
            mark("dead master removed by the sweep")
            break
        time.sleep(0.2)
    for person in survivors:
        person.heartbeating = False
    time.sleep(1.0)
    final = last_seq(stack, session_id)
    catch_up_deadline = time.monotonic() + 2 * settings.queue_visibility_timeout_s + 30
    while time.monotonic() < catch_up_deadline:
        behind = [p for p in survivors if p.browser.processor.last_applied < final]
        if not behind:
            if last_seq(stack, session_id) == final:
                break
            final = last_seq(stack, session_id)
        time.sleep(0.1)
    mark(f"survivors caught up to {final}" if not behind else f"NOT caught up: {[p.name for p in behind]}")
    for person in people + joiners:
        person.stop.set()
    for person in people + joiners:
        person.thread.join(timeout=plan.step_wait_s + 10)

    reference = reference_state(stack, session_id)
    starts = {p.name: _first_seq(p.ledger) for p in joiners}
    reports = {p.name: p.report(final if not p.dead else p.browser.processor.last_applied, starts.get(p.name, 1))
               for p in people + joiners}
    states = [p.browser.state for p in survivors]
    lost = sum(reports[p.name]["lost"] for p in survivors)
    duplicated = sum(r["duplicated"] for r in reports.values())
    out_of_order = sum(r["out_of_order"] for r in reports.values())
    errors = [e for p in people + joiners for e in p.errors] + [e for w in writers for e in w.errors]
    if "promoted_monotonic" in failover:
        failover["failover_s"] = round(failover["promoted_monotonic"] - failover["master_last_heartbeat_monotonic"], 2)
        failover["heartbeat_timeout_s"] = settings.heartbeat_timeout_s
    ok = (lost == 0 and duplicated == 0 and out_of_order == 0 and not behind
          and all(s == reference for s in states) and "failover_s" in failover)
    return {
        "plan": asdict(plan), "session_id": session_id, "events_published": published(),
        "rate_achieved": round(published() / stream_s, 1), "final_seq": final,
        "survivors": [p.name for p in survivors], "identical_state": all(s == states[0] for s in states),
        "equals_replay": all(s == reference for s in states), "lost": lost, "duplicated": duplicated,
        "out_of_order": out_of_order,
        "failover": {k: v for k, v in failover.items() if not k.endswith("_monotonic")},
        "browsers": reports, "timeline": timeline, "errors": errors[:20], "ok": ok and not errors,
        "settings": {"heartbeat_timeout_s": settings.heartbeat_timeout_s,
                     "heartbeat_interval_s": settings.heartbeat_interval_s, "stale_after_s": settings.stale_after_s,
                     "queue_visibility_timeout_s": settings.queue_visibility_timeout_s,
                     "snapshot_every": settings.snapshot_every},
    }


def _first_seq(ledger: list[tuple[str, int]]) -> int:
    """Where a joiner's own coverage starts: its first snapshot, or its first event."""
    if not ledger:
        return 1
    kind, seq = ledger[0]
    return seq + 1 if kind == "snapshot" else seq


def _watch_failover(stack: LocalStack, session_id: str, failover: dict[str, Any],
                    mark: Callable[[str], None]) -> None:
    old = failover["old_master"]
    deadline = time.monotonic() + 10 * stack.settings.heartbeat_timeout_s + 10
    while time.monotonic() < deadline:
        session = stack.service.store.get_session(session_id)
        if session is not None and session.master_client_id != old:
            failover["promoted_monotonic"] = time.monotonic()
            failover["new_master"] = session.master_client_id
            mark(f"failover: {session.master_client_id} promoted")
            return
        time.sleep(0.02)
