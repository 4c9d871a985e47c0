"""The direct path's pure parts: the page's receive URLs and SQS answers, inline documents in the
message model and in the service's fan-out, the CSP naming SQS, the heartbeat's renewals."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from botocore.credentials import Credentials

from chalice_app.receive_urls import HISTORY_WAIT_S, LIVE_WAIT_S, ReceiveUrlSigner
from chalice_app.settings import Settings
from chalice_app.static_site import content_security_policy, poll_mode
from pbfm_tooling.memory_backends import ManualClock, memory_service
from web_py.direct_receive import RENEW_MARGIN_S, DirectReceiver, received
from web_py.messages import Envelope, MessageError, MessageType
from web_py.sqs_xml import SqsResponseError

QUEUE = "https://sqs.us-west-1.amazonaws.com/123456789012/pb-fm-webpage-session-s-browser-aaaaaaaaaaaa.fifo"


def answer(expires_in_s: float = 900) -> dict[str, Any]:
    return {"receive_urls": {q: {"url": f"https://sqs.example/{q}", "expires_at": 0, "expires_in_s": expires_in_s}
                             for q in ("history", "live")}}


def test_urls_are_used_until_a_long_poll_would_outlive_them() -> None:
    receiver = DirectReceiver()
    assert not receiver.available and receiver.url_for("live", 20, 0.0) is None
    assert receiver.update(answer(100), now=1000.0) and receiver.available
    assert receiver.url_for("live", 20, 1000.0) == "https://sqs.example/live"
    last_start = 1100.0 - 20 - RENEW_MARGIN_S
    assert receiver.url_for("live", 20, last_start) is not None
    assert receiver.url_for("live", 20, last_start + 0.1) is None and receiver.expiring(20, last_start + 0.1)
    assert receiver.url_for("history", 5, last_start + 0.1) is not None  # a shorter wait still fits


@pytest.mark.parametrize("bad", [
    {}, {"receive_urls": None}, {"receive_urls": {"live": answer()["receive_urls"]["live"]}},
    answer(0), answer(-5),
    {"receive_urls": {q: {"url": "javascript:alert(1)", "expires_in_s": 60} for q in ("history", "live")}},
    {"receive_urls": {q: {"url": "https://x", "expires_in_s": True} for q in ("history", "live")}},
])
def test_an_answer_without_usable_urls_changes_nothing(bad: dict[str, Any]) -> None:
    receiver = DirectReceiver()
    receiver.update(answer(), now=0.0)
    assert not receiver.update(bad, now=10.0)
    assert receiver.url_for("live", 20, 10.0) == "https://sqs.example/live"


def _xml(*bodies: str, md5: str | None = None) -> str:
    items = "".join(f"<Message><MessageId>{i}</MessageId><ReceiptHandle>r{i}</ReceiptHandle>"
                    f"<MD5OfBody>{md5 or hashlib.md5(b.encode()).hexdigest()}</MD5OfBody><Body>{b}</Body></Message>"
                    for i, b in enumerate(bodies))
    return ('<ReceiveMessageResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/"><ReceiveMessageResult>'
            f"{items}</ReceiveMessageResult></ReceiveMessageResponse>")


def test_sqs_answers_become_messages_or_refusals() -> None:
    assert received(200, _xml('{"a":1}', "not json")) == [("r0", {"a": 1}), ("r1", "not json")]
    assert received(200, _xml()) == []
    with pytest.raises(SqsResponseError) as refused:
        received(403, "<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>Signature expired"
                      "</Message></Error></ErrorResponse>")
    assert refused.value.needs_fresh_url
    with pytest.raises(SqsResponseError) as missing:
        received(400, "<ErrorResponse><Error><Code>AWS.SimpleQueueService.NonExistentQueue</Code>"
                      "<Message>gone</Message></Error></ErrorResponse>")
    assert missing.value.queue_missing
    for status, text in [(200, _xml("{}", md5="0" * 32)), (502, "Bad Gateway"), (200, None), (200, "{}")]:
        with pytest.raises(SqsResponseError) as odd:
            received(status, text)
        assert not odd.value.needs_fresh_url and not odd.value.queue_missing


def test_the_signer_makes_one_url_per_queue_with_its_own_wait() -> None:
    signer = ReceiveUrlSigner(lambda: Credentials("AKID", "secret", "token"), region="us-west-1", endpoint=None,
                              lifetime_s=300, clock=lambda: 1_700_000_000.0)
    urls = signer.sign(QUEUE, QUEUE.replace(".fifo", "-history.fifo"))
    assert f"WaitTimeSeconds={LIVE_WAIT_S}" in urls.live.url and f"WaitTimeSeconds={HISTORY_WAIT_S}" in urls.history.url
    assert urls.live.url.startswith(QUEUE + "?") and "X-Amz-Security-Token=token" in urls.live.url
    assert urls.live.expires_at == 1_700_000_300
    with pytest.raises(ValueError):
        ReceiveUrlSigner(lambda: Credentials("a", "b"), region="us-west-1", endpoint=None, lifetime_s=901)


def test_documents_ride_only_with_content_behind_a_key() -> None:
    price = Envelope("s", 3, MessageType.PRICE_UPDATE, 1.0, s3_key="sessions/s/prices/x.json", url="https://u")
    inline = price.with_document({"symbol": "HASH-USD"})
    assert inline.url is None and Envelope.from_json(inline.to_json()) == inline
    with pytest.raises(MessageError):
        Envelope("s", 3, MessageType.ROLE_CHANGE, 1.0, payload={"master_client_id": "x"}, document={"a": 1})
    with pytest.raises(MessageError):
        Envelope.from_dict({**price.to_dict(), "document": [1, 2]})


def _delivered(service: Any, session_id: str) -> list[dict[str, Any]]:
    client = service.store.list_clients(session_id)[0]
    messages = service.queues.receive(client.live_queue_url, 0, 10)
    if messages:  # acknowledged, as the page does: one message group, so the next ones can follow
        service.queues.delete(client.live_queue_url, [handle for handle, _ in messages])
    return [json.loads(body) for _, body in messages]


@pytest.mark.parametrize(("threshold", "inline"), [(32 * 1024, True), (10, False), (0, False)])
def test_the_fanout_inlines_documents_up_to_the_threshold(threshold: int, inline: bool) -> None:
    service = memory_service(Settings(inline_document_bytes=threshold), clock=ManualClock())
    service.create_session("s", None)
    service.join("s", None)
    _delivered(service, "s")  # the join's own ROLE_CHANGE / PARTICIPANTS
    document = {"symbol": "HASH-USD", "display_price": "0.031"}
    service.blobs.put_json("sessions/s/prices/a.json", document)
    service.publish("s", MessageType.PRICE_UPDATE, s3_key="sessions/s/prices/a.json", document=document)
    [message] = _delivered(service, "s")
    assert message["s3_key"] == "sessions/s/prices/a.json"
    assert (message.get("document"), "url" in message) == ((document, False) if inline else (None, True))
    # The log keeps the key only: repairs and history stay by reference.
    [stored] = service.events_after("s", message["seq"] - 1, 1)[0]
    assert stored.document is None and stored.url is not None


def test_the_csp_names_sqs_in_aws_and_the_gateway_locally() -> None:
    assert "https://sqs.us-west-1.amazonaws.com" in content_security_policy(Settings(region="us-west-1"))
    local = Settings(aws_endpoint_url="http://127.0.0.1:5000", aws_public_endpoint_url="http://127.0.0.1:6000")
    policy = content_security_policy(local)
    assert "http://127.0.0.1:6000" in policy and "amazonaws" not in policy
    assert [poll_mode(q) for q in (None, {}, {"poll": "server"}, {"poll": "sqs"})] == \
        ["direct", "direct", "server", "direct"]
