"""Our session cookie is found whatever else a real browser's Cookie header carries."""

from __future__ import annotations

import pytest

from chalice_app import cookies

SECRET = "unit-secret"
SESSION = "demo-1"
BROWSER = "abcdefgh12345678"
NAME = cookies.cookie_name(SESSION)
VALUE = cookies.issue(SECRET, SESSION, BROWSER, max_age_s=60, secure=False).split(";", 1)[0].split("=", 1)[1]
OURS = f"{NAME}={VALUE}"

# Cookie headers of the kind other sites' scripts and frameworks leave behind on a shared domain.
# http.cookies.SimpleCookie stops at the first of these and drops every cookie after it.
FOREIGN = [
    'prefs={"theme":"dark","font":14}',  # JSON as a value
    'x="a',  # an unbalanced quote
    "note=hello world",  # spaces
    "list=a,b,c",  # commas
    "arr=[1,2]",  # brackets
    "=foo",  # empty name
    "foo",  # no "=" at all (browsers send a nameless cookie like this)
    "expires=Thu, 01 Jan 1970 00:00:00 GMT",  # a cookie named like an attribute
    "path=/; domain=.example.com",  # more attribute names
    "$Version=1",  # an RFC 2109 leftover
    "secure",  # a bare attribute name
    "name=héllo wörld",  # non-ASCII
    'q="quoted \\" escape"',  # a backslash escape inside quotes
    "a=b=c=d",  # "=" inside the value
    "  spaced  =  out  ",  # stray whitespace
    "__Host-csrf=t0k3n; _ga=GA1.2.345.678",  # ordinary cookies
    ";;",  # empty pairs
    "tab=\tx",  # a tab
    "ctl=\x7f\x01",  # control characters
    "emoji=🍪",
    "huge=" + "z" * 4000,
]


def placements(junk: str) -> list[str]:
    return [f"{OURS}; {junk}", f"{junk}; {OURS}; {junk}", f"{junk}; {OURS}", f"{junk};{OURS}"]


@pytest.mark.parametrize("junk", FOREIGN)
def test_our_cookie_is_found_before_between_and_after_foreign_junk(junk: str) -> None:
    for header in placements(junk):
        assert cookies.verified_browser_id(SECRET, SESSION, header) == BROWSER, header
        assert cookies.sent_for(SESSION, header), header


@pytest.mark.parametrize("junk", FOREIGN)
def test_junk_alone_is_no_identity_and_no_cookie_of_ours(junk: str) -> None:
    assert cookies.verified_browser_id(SECRET, SESSION, junk) is None
    assert not cookies.sent_for(SESSION, junk)


def test_all_the_junk_at_once() -> None:
    header = "; ".join([*FOREIGN[:10], OURS, *FOREIGN[10:]])
    assert cookies.verified_browser_id(SECRET, SESSION, header) == BROWSER


def test_a_stale_duplicate_does_not_hide_the_valid_cookie() -> None:
    stale = f"{NAME}=zzzzzzzzzzzzzzzz.{'0' * 64}"
    for header in (f"{stale}; {OURS}", f"{OURS}; {stale}"):
        assert cookies.verified_browser_id(SECRET, SESSION, header) == BROWSER
    assert cookies.verified_browser_id(SECRET, SESSION, stale) is None
    assert cookies.sent_for(SESSION, stale)  # sent, but not valid: the caller says so


def test_quoted_value_and_whitespace_around_it() -> None:
    assert cookies.verified_browser_id(SECRET, SESSION, f'{NAME}="{VALUE}"') == BROWSER
    assert cookies.verified_browser_id(SECRET, SESSION, f"  {NAME} = {VALUE}  ") == BROWSER


@pytest.mark.parametrize(
    "header",
    [
        f"x{NAME}={VALUE}",  # a longer name that ends like ours
        f"{NAME}x={VALUE}",
        f"{NAME.upper()}={VALUE}",  # names are case-sensitive
        f"{cookies.cookie_name('other-session')}={VALUE}",  # another session's cookie
        f"{NAME}={VALUE[:-1]}",  # tampered signature
        f"{NAME}={BROWSER}\n.{VALUE.split('.')[1]}",  # a newline inside the browser id must not slip through
        f"{NAME}=héllo.wörld",  # non-ASCII signature: compared as bytes, no crash
        f"{NAME}=",
        f"{NAME}",
        "",
    ],
)
def test_what_is_not_our_valid_cookie(header: str) -> None:
    assert cookies.verified_browser_id(SECRET, SESSION, header) is None


def test_no_header_and_invalid_session_ids() -> None:
    assert cookies.verified_browser_id(SECRET, SESSION, None) is None
    assert not cookies.sent_for(SESSION, None)
    assert cookies.verified_browser_id(SECRET, "bad id!", f"{cookies.cookie_name('bad id!')}={VALUE}") is None


def test_cookie_values_keeps_every_value_in_order() -> None:
    assert cookies.cookie_values("a=1; b=2; a=3; a; =a; a=", "a") == ["1", "3", ""]
    assert cookies.cookie_values('a="x"; a="; a=""', "a") == ["x", '"', ""]


def test_a_cookie_names_its_incarnation_and_cannot_be_moved_to_another() -> None:
    issued = cookies.issue(SECRET, SESSION, BROWSER, max_age_s=60, secure=False, incarnation="1a2b3c4d")
    pair = issued.split(";", 1)[0]
    value = pair.split("=", 1)[1]
    assert value.startswith(f"{BROWSER}.1a2b3c4d.")
    assert cookies.verified_identity(SECRET, SESSION, f"{FOREIGN[0]}; {pair}") == (BROWSER, "1a2b3c4d")
    # The incarnation is signed: claiming another (or none) with the same signature fails.
    signature = value.rsplit(".", 1)[1]
    for forged in (f"{BROWSER}.9f9f9f9f.{signature}", f"{BROWSER}.{signature}", f"{BROWSER}..{signature}",
                   f"{BROWSER}.UPPER.{signature}"):
        assert cookies.verified_identity(SECRET, SESSION, f"{NAME}={forged}") is None, forged
    # Cookies issued before incarnations still verify, as incarnation "".
    assert cookies.verified_identity(SECRET, SESSION, OURS) == (BROWSER, "")


def test_client_ids_differ_per_incarnation_and_stay_put_within_one() -> None:
    ids = {inc: cookies.client_id_for(SECRET, SESSION, BROWSER, "tab", inc) for inc in ("", "1a2b3c4d", "5e6f7a8b")}
    assert len(set(ids.values())) == 3
    assert cookies.client_id_for(SECRET, SESSION, BROWSER, "tab", "1a2b3c4d") == ids["1a2b3c4d"]
    assert cookies.client_id_for(SECRET, SESSION, BROWSER, "tab") == ids[""]
