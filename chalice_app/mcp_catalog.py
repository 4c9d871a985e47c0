"""What the MCP server offers besides tools: who it is, its resources, its prompts, completions.

Pure descriptions and small lookups over the ``SessionService``; the JSON-RPC plumbing (eras,
errors, HTTP) stays in ``mcp_endpoint``. Everything here is answered the same in every protocol
revision; the endpoint adds what a revision requires around it (``resultType``, cache hints).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from chalice_app import mcp_app_view
from chalice_app.page_links import PageLinks
from chalice_app.page_view import page_view
from chalice_app.sessions import SessionService
from chalice_app.version import package_version
from web_py.messages import SESSION_ID_PATTERN

SERVER_NAME = "pb-fm-webpage"
SERVER_TITLE = "pb-fm live webpage"
INSTRUCTIONS = """\
This server drives live webpages that many people watch at once; every browser of a session shows the same.
1. webpage_create_session (pick a short session_id or let it choose) and give the user its page_url.
2. Show things: webpage_update_hash_price_display (the live HASH-USD price card) and
   webpage_send_to_browsers (text, key/value tables, charts). Both replace what the page shows, for everyone.
3. Read back with webpage_get_page_state (or the resource pbfm://sessions/{session_id}/state) to confirm what
   people see. webpage_get_hash_price reads a quote without showing it.
4. webpage_end_session only when the user asks: it ends the page for everyone, for good.
A tool result with isError: true explains what was wrong with the arguments; fix them and call again."""

STATE_TEMPLATE = "pbfm://sessions/{session_id}/state"
_STATE_URI = re.compile(r"pbfm://sessions/(?P<session_id>[^/]{1,64})/state")
RESOURCE_MIME = "application/json"
# resources/list names sessions; like webpage_list_sessions it stays bounded, newest first.
RESOURCE_LIST_LIMIT = 50
COMPLETION_LIMIT = 100  # the spec caps completion values at 100

START_PROMPT = "start_live_hash_page"
DESCRIBE_PROMPT = "describe_page"


class UnknownResource(LookupError):
    """A resources/read of a URI this server does not serve, or of a session that does not exist."""


class PromptError(ValueError):
    """An unknown prompt, or arguments it cannot take."""


def server_info() -> dict[str, str]:
    return {"name": SERVER_NAME, "title": SERVER_TITLE, "version": package_version()}


# -- resources -------------------------------------------------------------------------------

def resource_templates() -> list[dict[str, Any]]:
    return [{
        "uriTemplate": STATE_TEMPLATE,
        "name": "session-page-state",
        "title": "What a session's page shows",
        "description": "The page state every browser of the session shows now (price card, content blocks, "
                       "participants), as JSON; the same as the webpage_get_page_state tool.",
        "mimeType": RESOURCE_MIME,
    }]


def state_uri(session_id: str) -> str:
    return STATE_TEMPLATE.format(session_id=session_id)


def list_resources(service: SessionService, links: PageLinks) -> list[dict[str, Any]]:
    """The session view inside a chat (MCP Apps), then each recent session's page state."""
    return [mcp_app_view.resource_entry(service.settings, links), *({
        "uri": state_uri(record.session_id),
        "name": f"{record.session_id}-state",
        "title": f"Page state of {record.title or record.session_id}",
        "description": f"What {links.page_url(record.session_id)} shows now.",
        "mimeType": RESOURCE_MIME,
    } for record in service.store.recent_sessions(RESOURCE_LIST_LIMIT))]


def read_resource(service: SessionService, links: PageLinks, uri: str) -> dict[str, Any]:
    if uri == mcp_app_view.VIEW_URI:
        return mcp_app_view.read(service.settings, links)
    match = _STATE_URI.fullmatch(uri)
    if match is None or not SESSION_ID_PATTERN.fullmatch(match["session_id"]):
        raise UnknownResource(f"Unknown resource {uri!r}; this server serves {STATE_TEMPLATE} and "
                              f"{mcp_app_view.VIEW_URI}.")
    session_id = match["session_id"]
    if service.store.get_session(session_id) is None:
        raise UnknownResource(f"No session {session_id!r}; resources/list names the live ones.")
    view = page_view(service, session_id, links)
    return {"contents": [{"uri": uri, "mimeType": RESOURCE_MIME,
                          "text": json.dumps(view.model_dump(mode="json"), ensure_ascii=False)}]}


# -- prompts ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Argument:
    name: str
    description: str
    required: bool


_PROMPTS: dict[str, tuple[str, str, tuple[_Argument, ...]]] = {
    START_PROMPT: (
        "Start a live HASH-USD page",
        "Create a live page showing the HASH-USD price for a group, and hand out its link.",
        (_Argument("audience", "Who will watch, e.g. 'my team' (shown in the page's heading)", False),
         _Argument("session_id", "A short id for the page (1-24 of A-Z a-z 0-9 _ -); omitted: chosen for you",
                   False)),
    ),
    DESCRIBE_PROMPT: (
        "Describe a live page",
        "Read what a session's page shows right now and summarise it for the user.",
        (_Argument("session_id", "The session whose page to describe", True),),
    ),
}


def list_prompts() -> list[dict[str, Any]]:
    return [{"name": name, "title": title, "description": description,
             "arguments": [{"name": a.name, "description": a.description, "required": a.required} for a in args]}
            for name, (title, description, args) in _PROMPTS.items()]


def get_prompt(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    entry = _PROMPTS.get(name)
    if entry is None:
        raise PromptError(f"Unknown prompt {name!r}; prompts/list names {sorted(_PROMPTS)}.")
    _title, description, accepted = entry
    names = {a.name for a in accepted}
    unknown = sorted(set(arguments) - names)
    missing = sorted(a.name for a in accepted if a.required and not arguments.get(a.name))
    bad = sorted(k for k, v in arguments.items() if not isinstance(v, str))
    if unknown or missing or bad:
        raise PromptError(f"Prompt {name!r}: " + "; ".join(
            part for part in (f"unknown arguments {unknown}" if unknown else "",
                              f"missing {missing}" if missing else "",
                              f"arguments must be strings: {bad}" if bad else "") if part))
    session_id = arguments.get("session_id") or ""
    if session_id and not SESSION_ID_PATTERN.fullmatch(session_id):
        raise PromptError("session_id must be 1-24 of A-Z a-z 0-9 _ -")
    if name == START_PROMPT:
        audience = arguments.get("audience") or "everyone watching"
        text = (f"Start a live HASH-USD price page for {audience}. Call webpage_create_session with a title for "
                f"{audience}" + (f" and session_id {session_id!r}" if session_id else "")
                + ", then webpage_send_to_browsers with a heading, the price_card "
                  "block and a short note, then webpage_update_hash_price_display. Check the result with "
                  "webpage_get_page_state and give me the page_url to share.")
    else:
        text = (f"Call webpage_get_page_state for session {session_id!r} (or read {state_uri(session_id)}) and "
                "tell me in a few sentences what everyone on that page sees now: the price, the content and "
                "how many people are watching.")
    return {"description": description, "messages": [{"role": "user", "content": {"type": "text", "text": text}}]}


# -- completion ------------------------------------------------------------------------------

def complete(service: SessionService, ref: Any, argument: Any) -> dict[str, Any]:
    """Session ids for the resource template's and the prompts' ``session_id``; nothing for others."""
    if not isinstance(ref, dict) or not isinstance(argument, dict):
        raise PromptError("completion/complete needs a ref object and an argument object.")
    name, value = argument.get("name"), argument.get("value", "")
    if not isinstance(name, str) or not isinstance(value, str):
        raise PromptError("completion/complete: argument.name and argument.value must be strings.")
    refers_to_session = (ref.get("type") == "ref/resource" and ref.get("uri") == STATE_TEMPLATE) or (
        ref.get("type") == "ref/prompt" and ref.get("name") in _PROMPTS)
    values: list[str] = []
    if refers_to_session and name == "session_id":
        values = [r.session_id for r in service.store.recent_sessions(COMPLETION_LIMIT)
                  if r.session_id.startswith(value)]
    return {"completion": {"values": values, "total": len(values), "hasMore": False}}

