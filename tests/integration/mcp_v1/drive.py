"""Run by the mcp 1.x SDK in its own venv (.venv-mcp1): drive the server, print what it saw as JSON."""

import asyncio
import json
import sys

from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client


async def main(url: str, session_id: str) -> None:
    async with streamablehttp_client(url) as (read, write, _), ClientSession(read, write) as session:
        init = await session.initialize()
        tools = await session.list_tools()
        created = await session.call_tool("webpage_create_session", {"session_id": session_id})
        failed = await session.call_tool("webpage_update_hash_price_display", {"session_id": "nobody-home-v1"})
        invalid = await session.call_tool("webpage_update_hash_price_display", {"session_id": 7, "source": "nyse"})
        price = await session.call_tool("webpage_update_hash_price_display", {"session_id": session_id})
        state = await session.call_tool("webpage_get_page_state", {"session_id": session_id})
        wrong = await session.call_tool("webpage_get_page_state", {"session_id": 3.5})
        print(json.dumps({
            "protocol": init.protocolVersion,
            "server": init.serverInfo.name,
            "server_title": init.serverInfo.title,
            "instructions": init.instructions,
            "tools": sorted(tool.name for tool in tools.tools),
            "annotations": {
                tool.name: {"title": tool.title, **tool.annotations.model_dump(by_alias=True, exclude={"title"})}
                for tool in tools.tools
            },
            "created": created.structuredContent,
            "failed_is_error": failed.isError,
            "failed_text": failed.content[0].text if failed.content else "",
            "invalid_is_error": invalid.isError,
            "invalid_text": invalid.content[0].text if invalid.content else "",
            "invalid_structured": invalid.structuredContent,
            "published": price.structuredContent["price"]["display_price"],
            "state": state.structuredContent,
            "wrong_is_error": wrong.isError,
            "wrong_text": wrong.content[0].text if wrong.content else "",
        }))


asyncio.run(main(sys.argv[1], sys.argv[2]))
