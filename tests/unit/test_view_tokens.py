"""The chat view's token: scoped to one session and one view, signed, short-lived."""

from __future__ import annotations

import pytest

from chalice_app import view_tokens
from chalice_app.view_tokens import TokenRefused, issue, verify

SECRET = "s" * 32
NOW = 1_800_000_000.0


def test_a_token_verifies_for_its_own_session_until_it_expires() -> None:
    token = issue(SECRET, "room-1", now=NOW, lifetime_s=900)
    assert verify(SECRET, token.value, "room-1", now=NOW + 899).view_id == token.view_id
    with pytest.raises(TokenRefused, match="expired"):
        verify(SECRET, token.value, "room-1", now=NOW + 900)


def test_a_token_is_refused_for_any_other_session() -> None:
    token = issue(SECRET, "room-1", now=NOW, lifetime_s=900)
    for other in ("room-2", "room-10", "room", "ROOM-1"):
        with pytest.raises(TokenRefused, match="another session"):
            verify(SECRET, token.value, other, now=NOW)


@pytest.mark.parametrize("tamper", [
    lambda v: v.replace(".room-1.", ".room-2."),               # another session, same signature
    lambda v: v[:-1] + ("0" if v[-1] != "0" else "1"),          # one signature digit
    lambda v: ".".join([*v.split(".")[:4], str(int(v.split(".")[4]) + 3600), v.split(".")[5]]),  # longer life
    lambda v: v.replace(".room-1..", ".room-1.0a1b2c3d."),      # bound to an incarnation it was not
    lambda v: v.split(".", 1)[1],                               # no version
    lambda v: v + ".x",
    lambda v: "",
    lambda v: "v1." + "a" * 300,
    lambda v: v.replace("v1.", "v2.", 1),
])
def test_a_tampered_or_malformed_token_is_refused(tamper: object) -> None:
    token = issue(SECRET, "room-1", now=NOW, lifetime_s=900)
    value = tamper(token.value)  # type: ignore[operator]
    session = "room-2" if ".room-2." in value else "room-1"
    with pytest.raises(TokenRefused):
        verify(SECRET, value, session, now=NOW)


def test_another_servers_secret_refuses_it() -> None:
    token = issue(SECRET, "room-1", now=NOW, lifetime_s=900)
    with pytest.raises(TokenRefused, match="not valid on this server"):
        verify("t" * 32, token.value, "room-1", now=NOW)


def test_renewal_keeps_the_view_and_so_its_participant_id() -> None:
    token = issue(SECRET, "room-1", now=NOW, lifetime_s=900)
    assert not token.due_for_renewal(NOW + 449, 900) and token.due_for_renewal(NOW + 451, 900)
    renewed = issue(SECRET, "room-1", now=NOW + 451, lifetime_s=900, view_id=token.view_id)
    assert renewed.value != token.value and renewed.expires_at == int(NOW) + 451 + 900
    assert view_tokens.client_id_for(SECRET, renewed, "tab") == view_tokens.client_id_for(SECRET, token, "tab")
    # Each tab (each load of the iframe) is its own participant; another view is another one.
    assert view_tokens.client_id_for(SECRET, token, "tab") != view_tokens.client_id_for(SECRET, token, "tab2")
    other = issue(SECRET, "room-1", now=NOW, lifetime_s=900)
    assert view_tokens.client_id_for(SECRET, other, "tab") != view_tokens.client_id_for(SECRET, token, "tab")


def test_a_view_never_shares_a_browser_id_with_a_cookie() -> None:
    from chalice_app.cookies import BROWSER_ID

    token = issue(SECRET, "room-1", now=NOW, lifetime_s=900)
    assert not BROWSER_ID.fullmatch(view_tokens.browser_id_of(token))


def test_a_token_bound_to_an_incarnation_names_another_participant_there() -> None:
    # A join binds the view to the session's incarnation (a new token for the same view): the
    # participant id, and so the queues, differ per incarnation, as a re-issued cookie's do.
    unbound = issue(SECRET, "room-1", now=NOW, lifetime_s=900)
    bound = issue(SECRET, "room-1", now=NOW, lifetime_s=900, view_id=unbound.view_id, incarnation="0a1b2c3d")
    assert verify(SECRET, bound.value, "room-1", now=NOW).incarnation == "0a1b2c3d"
    assert verify(SECRET, unbound.value, "room-1", now=NOW).incarnation == ""
    assert view_tokens.client_id_for(SECRET, bound, "tab") != view_tokens.client_id_for(SECRET, unbound, "tab")
    with pytest.raises(ValueError):
        issue(SECRET, "room-1", now=NOW, lifetime_s=900, incarnation="not.hex")
