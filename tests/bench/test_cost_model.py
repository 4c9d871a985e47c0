"""The cost model's arithmetic (bench/cost.py): the projection by the design's rules, and the floor."""

from __future__ import annotations

from collections import Counter

import pytest

from bench.cost import MONTH_S, PRICES, cost_model, project

MONTH_M = MONTH_S / 1e6  # 2.592 M seconds in 30 days


def test_one_update_a_second_with_a_15_s_heartbeat() -> None:
    at = project(1.0, heartbeat_interval_s=15.0, lambda_s_per_call=0.02)
    minute = at["per_viewer_minute"]
    # 60 sends and 60 receives; 4 heartbeats carrying 15 handles each: 2 DeleteMessageBatch apiece.
    assert minute == {"sends": 60.0, "receives": 60.0, "deletes": 8.0, "rest": 4.0}
    month = at["per_viewer_month"]
    assert month["rest_requests"] == round(MONTH_S / 15) == 172_800
    assert month["sqs_requests"] == round((1 + 1 + 2 / 15) * MONTH_S)
    dollars = at["dollars_per_viewer_month"]
    assert dollars["sqs"] == pytest.approx((2 + 2 / 15) * MONTH_M * 0.50, abs=1e-3)
    assert dollars["api_gateway"] == pytest.approx(0.1728 * 3.50, abs=1e-3)
    assert dollars["dynamodb"] == pytest.approx(0.1728 * (2 * 0.125 + 0.625), abs=1e-3)
    assert at["floor_dollars_fifo"] == pytest.approx(2 * MONTH_M * 0.50, abs=1e-3)  # $2.59
    assert at["total_dollars_per_viewer_month"] > at["floor_dollars_fifo"] > 1.0


def test_an_idle_viewer_costs_its_heartbeats_and_its_empty_long_polls() -> None:
    at = project(0.0, heartbeat_interval_s=15.0, lambda_s_per_call=0.02)
    assert at["per_viewer_minute"] == {"sends": 0.0, "receives": 3.0, "deletes": 0.0, "rest": 4.0}
    assert at["floor_dollars_fifo"] == 0.0


def test_a_slow_stream_deletes_once_per_beat_that_carries_a_handle() -> None:
    # One update a minute, a beat every 15 s: a quarter of the beats carry a handle.
    at = project(1 / 60, heartbeat_interval_s=15.0, lambda_s_per_call=0.02)
    assert at["per_viewer_minute"]["deletes"] == pytest.approx(1.0)
    assert at["per_viewer_minute"]["receives"] == 3.0  # the 20 s waits run out; one of them ends early


def test_above_the_bound_the_page_beats_early() -> None:
    at = project(10.0, heartbeat_interval_s=15.0, lambda_s_per_call=0.02)
    assert at["per_viewer_minute"]["rest"] == 12.0  # 600 handles a minute, 50 a call
    assert at["per_viewer_minute"]["deletes"] == 60.0


def test_the_run_is_priced_beside_its_floor() -> None:
    # 4 viewers, 60 s, 60 updates: per viewer 60 sends, 60 presigned receives, 4 beats, 8 deletes.
    model = cost_model(
        viewers=4, seconds=60.0, published=60, rest=Counter({"/api/webpage_send_heartbeat": 16}),
        rest_seconds={"/api/webpage_send_heartbeat": 0.32}, gateway=Counter({"sqs": 240}),
        server_sqs=Counter({"SendMessage": 240, "DeleteMessageBatch": 32}), heartbeat_interval_s=15.0,
        documents_fetched=0, inline=240, ack_calls=16, acks_sent=240)
    assert model["per_viewer_minute"]["sqs_requests"] == 128.0
    assert model["per_viewer_minute"]["rest_requests"] == 4.0
    floor = model["floor_per_viewer_month"]
    assert floor["dollars_fifo"] == pytest.approx(2 * MONTH_M * PRICES["sqs_fifo_per_million"], abs=1e-3)
    assert floor["dollars_standard_queue"] == pytest.approx(2 * MONTH_M * 0.40, abs=1e-3)  # $2.07
    assert model["over_floor"] == pytest.approx(model["total_dollars_per_viewer_month"] / floor["dollars_fifo"],
                                                abs=0.01)
    first = model["at_rates"][0]
    assert first["updates_per_s"] == 1.0
    # The projection at the run's own rate agrees with the counted figure.
    assert first["total_dollars_per_viewer_month"] == pytest.approx(model["total_dollars_per_viewer_month"],
                                                                    abs=0.02)
