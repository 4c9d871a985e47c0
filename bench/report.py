"""The readable table of a bench result, and the verdict on each target."""

from __future__ import annotations

from typing import Any


def _ms(value: Any) -> str:
    return "—" if value is None else f"{value:,.1f}"


def verdicts(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per target: the measured value, the target and whether it is met (None: not measured)."""
    figures, targets = result.get("figures", {}), result["targets"]
    rows: list[dict[str, Any]] = []

    def row(name: str, value: float | None, target: float, unit: str) -> None:
        rows.append({"target": name, "value": value, "limit": target, "unit": unit,
                     "met": None if value is None else value <= target})

    update = figures.get("update_latency")
    floor = figures.get("floor", {}).get("send_to_receive", {})
    if update and update.get("latency"):
        p95 = update["latency"]["p95_ms"]
        row("update latency p95", p95, targets["update_p95_ms"], "ms")
        row("update latency p95 / floor p95", round(p95 / floor["p95_ms"], 2), targets["update_over_floor"], "x")
    else:
        row("update latency p95", None, targets["update_p95_ms"], "ms")
    registration = figures.get("registration", {}).get("all", {})
    row("registration p95", registration.get("p95_ms"), targets["registration_p95_ms"], "ms")
    scaling = figures.get("joins", {}).get("join_scaling")
    row("join p95, last 20 / first 20 of one session", scaling["last_over_first_p95"] if scaling else None,
        targets["join_last_over_first"], "x")
    removal = figures.get("joins", {}).get("stale_removal")
    row("longest other request during stale removal", removal["longest_other_request_ms"] if removal else None,
        targets["stale_removal_longest_other_ms"], "ms")
    late = {r["history"]: r for r in figures.get("late_joiner", [])}
    largest = late.get(10_000)
    row("late joiner p95 at 10,000 events", largest["join_to_caught_up"]["p95_ms"] if largest else None,
        targets["late_joiner_10000_ms"], "ms")
    for fan in figures.get("fanout", []):
        row(f"fan-out to {fan['browsers']} / (N x single send)", fan["fanout_over_floor"],
            targets["fanout_over_floor"], "x")
        if fan.get("fanout_idle_over_floor") is not None:
            row(f"  same, nobody polling (N={fan['browsers']})", fan["fanout_idle_over_floor"],
                targets["fanout_over_floor"], "x")
    boot = figures.get("boot")
    row("boot: page load → first price", boot.get("first_price", {}).get("p50_ms") if boot else None,
        targets["boot_ms"], "ms")
    cost = figures.get("cost")
    if "cost_dollars_per_viewer_month" in targets:
        row("AWS $ per viewer-month at 1 update/s", cost["total_dollars_per_viewer_month"] if cost else None,
            targets["cost_dollars_per_viewer_month"], "$")
        row("  its floor (SQS send + receive per update)", cost["floor_per_viewer_month"]["dollars_fifo"]
            if cost else None, targets["cost_dollars_per_viewer_month"], "$")
        idle = (cost or {}).get("idle_viewer")
        row("idle viewer: calls to our server per minute", idle["rest_requests_per_viewer_minute"] if idle else None,
            targets["idle_calls_per_viewer_minute"], "")
    return rows


def _figures_table(result: dict[str, Any]) -> list[str]:
    figures = result["figures"]
    lines = ["figure                                   p50 ms    p95 ms    p99 ms   n",
             "---------------------------------------  --------  --------  -------- ----"]

    def line(name: str, s: dict[str, Any] | None) -> None:
        if not s or not s.get("n"):
            lines.append(f"{name:<39}  {'not measured':>8}")
            return
        lines.append(f"{name:<39}  {_ms(s['p50_ms']):>8}  {_ms(s['p95_ms']):>8}  {_ms(s['p99_ms']):>8} {s['n']:>4}")

    line("floor: SQS send → long-poll receive", figures["floor"]["send_to_receive"])
    line("floor: one send_message", figures["floor"]["single_send"])
    registration = figures.get("registration", {})
    line("registration (all joins)", registration.get("all"))
    line("  first join (master)", registration.get("first_join"))
    line("  later joins (observers)", registration.get("observer_join"))
    scaling = figures.get("joins", {}).get("join_scaling")
    if scaling:
        line("join into one session, first 20", scaling["first"])
        line(f"join into one session, last 20 of {scaling['joins']}", scaling["last"])
    removal = figures.get("joins", {}).get("stale_removal")
    if removal:
        line("MCP update, other session, before", removal["other_requests_before"])
        line(f"  same, while {removal['viewers']} stale are removed", removal["other_requests_during"])
        lines.append(f"  removal of {removal['viewers']} stale browsers: {removal['removal_s']} s, "
                     f"all removed: {removal['removed_all']}, max RSS {removal['max_rss_mb_after']} MB")
    for late in figures.get("late_joiner", []):
        line(f"late joiner, {late['history']:,} events", late["join_to_caught_up"])
    for fan in figures.get("fanout", []):
        line(f"fan-out N={fan['browsers']}: sends only", fan["fanout"])
        line(f"fan-out N={fan['browsers']}: sends, nobody polling", fan.get("fanout_idle"))
        line(f"fan-out N={fan['browsers']}: whole publish", fan["publish"])
        line(f"fan-out N={fan['browsers']}: all browsers applied", fan["all_applied"])
    update = figures.get("update_latency")
    line("update: MCP call → price in 8 pages", update.get("latency") if update else None)
    line("  MCP call → its response", update.get("mcp_response") if update else None)
    boot = figures.get("boot")
    line("boot: page load → first price", boot.get("first_price") if boot else None)
    idle = (update or {}).get("idle_viewer")
    if idle:
        lines.append(f"idle viewer: {idle['requests_per_viewer_minute']} requests, "
                     f"{idle['request_seconds_per_viewer_minute']} s on our server per viewer-minute "
                     f"({idle['viewers']} pages, {idle['seconds']:.0f} s)")
    cost = figures.get("cost")
    if cost:
        floor = cost["floor_per_viewer_month"]
        lines.append(f"AWS cost model: ${cost['total_dollars_per_viewer_month']} per viewer-month at "
                     f"{cost['per_viewer_minute']['updates']:g} updates/min ({cost['viewers']} viewers, "
                     f"{cost['seconds']:.0f} s counted; {cost['dollars_per_viewer_month']})")
        lines.append(f"  its floor (SQS send + receive per update): ${floor['dollars_fifo']} FIFO, "
                     f"${floor['dollars_standard_queue']} standard; {cost['over_floor']}x the floor")
        for at in cost.get("at_rates", []):
            per_minute = at.get("updates_per_minute", round(at["updates_per_s"] * 60, 2))  # (older results)
            lines.append(f"  projected at {per_minute:g} updates/min: "
                         f"${at['total_dollars_per_viewer_month']} (HTTP API instead of REST: "
                         f"${at['total_with_http_api']}; floor ${at['floor_dollars_fifo']})")
        idle = cost.get("idle_viewer")
        if idle:
            lines.append(f"  idle viewer: {idle['rest_requests_per_viewer_minute']} calls/min to us, "
                         f"{idle['sqs_receives_per_viewer_minute']} SQS receives/min")
    for name in ("update_latency", "boot"):
        if figures.get(name, {}).get("missing"):
            lines.append(f"  {name} missing: {figures[name]['missing']}")
    return lines


def _chaos_table(chaos: dict[str, Any]) -> list[str]:
    lines = [f"chaos: {chaos['events_published']} events at {chaos['rate_achieved']:.1f}/s "
             f"(asked {chaos['plan']['rate']}/s), final seq {chaos['final_seq']}",
             f"  survivors {len(chaos['survivors'])}, identical final state: {chaos['identical_state']}, "
             f"equal to full replay: {chaos['equals_replay']}",
             f"  lost {chaos['lost']}  duplicated {chaos['duplicated']}  out of order {chaos['out_of_order']}",
             f"  failover: {chaos['failover']}"]
    for name, browser in chaos["browsers"].items():
        lines.append(f"  {name:<14} {browser['role_history']:<10} applied {browser['applied']:>5} "
                     f"snapshots {browser['snapshots']:>2} lost {browser['lost']} dup {browser['duplicated']} "
                     f"ooo {browser['out_of_order']}  {', '.join(browser['chaos'])}")
    lines.append("  events: " + "; ".join(chaos["timeline"][:20]))
    lines.append(f"  verdict: {'OK' if chaos['ok'] else 'FAILED'}")
    return lines


def render_table(result: dict[str, Any]) -> str:
    m = result["machine"]
    # (Results written before sizes had names say only whether the run was quick.)
    size = result.get("sizes", {}).get("name", "quick" if result.get("quick") else "full")
    lines = [f"pb-fm-webpage bench {result['date']}{'' if size == 'full' else f' ({size})'} — {m['cpu']}, "
             f"{m['cores']} cores, Python {m['python']}, moto {m['moto']} — {result['duration_s']} s", ""]
    if "figures" in result:
        lines += _figures_table(result)
        lines += ["", "target                                        measured     limit   met",
                  "--------------------------------------------  ----------  --------  ---"]
        for v in verdicts(result):
            met = {True: "yes", False: "NO", None: "n/a"}[v["met"]]
            value = "—" if v["value"] is None else f"{v['value']:,.2f}"
            lines.append(f"{v['target']:<44}  {value:>10}  {v['limit']:>7,g}{v['unit']}  {met}")
    if "chaos" in result:
        lines += _chaos_table(result["chaos"])
    return "\n".join(lines)
