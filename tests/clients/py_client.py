"""Drives an MCP server with the official Python SDK (mcp 2.x) client and prints what it saw as JSON.

Usage: python py_client.py URL binance|everything|approval|modern|modern-fixture|modern-everything|legacy-fixture|schemas

A URL ending in /sse is spoken to with the legacy HTTP+SSE transport (`sse_client`). The
`modern` scenarios pin the client to MCP 2026-07-28 (no initialize; `server/discover` first);
`legacy-fixture` pins it to the initialize handshake, in front of modern_server.py;
`modern-everything` calls server-everything's tools that ask their client (elicitation,
sampling) from a client pinned to 2026-07-28.
"""

import asyncio
import json
import sys

from mcp import types
from mcp.client.client import Client
from mcp.client.sse import sse_client
from mcp.shared.exceptions import MCPError


async def main(url: str, scenario: str) -> None:
    elicitations: list[str] = []
    progress: list[float] = []

    async def on_elicit(context, params):
        elicitations.append(params.message)
        properties = (getattr(params, "requested_schema", None) or {}).get("properties", {})
        if "approve" in properties:  # the gateway asking to approve a call
            return types.ElicitResult(action="accept", content={"approve": True})
        return types.ElicitResult(action="accept", content={"name": "Ada Lovelace", "check": True})

    async def on_progress(value, total, message):
        progress.append(value)

    out: dict = {}
    if scenario.startswith("modern") or scenario == "legacy-fixture":
        await modern(url, scenario, on_elicit, elicitations)
        return
    server = sse_client(url) if url.endswith("/sse") else url
    async with Client(server, elicitation_callback=on_elicit) as client:
        out["protocol"] = client.protocol_version
        tools = await client.list_tools()
        out["tools"] = sorted(t.name for t in tools.tools)
        if scenario == "schemas":  # the tools as the client parsed them, nothing called
            out["schemas"] = {
                t.name: t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools.tools
            }
            calls = {}
        elif scenario == "approval":
            calls = {"subscribe": ("subscribe_to_kline_stream", {"symbol": "BTCUSDT", "interval": "1h"}, None)}
        elif scenario == "binance":
            calls = {
                "price": ("get_price", {"symbol": "BTCUSDT"}, None),
                "book": ("get_order_book", {"symbol": "ETHUSDT", "depth": 5}, None),
                "slow": ("get_all_book_tickers", {}, on_progress),
            }
        else:
            calls = {
                "echo": ("echo", {"message": "through the gateway"}, None),
                "slow": ("trigger-long-running-operation", {"duration": 0.3, "steps": 3}, on_progress),
                "elicitation": ("trigger-elicitation-request", {}, None),
            }
        for key, (name, arguments, callback) in calls.items():
            result = await client.call_tool(name, arguments, progress_callback=callback)
            out[key] = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    out["progress"] = progress
    out["elicitations"] = elicitations
    print(json.dumps(out))


async def modern(url: str, scenario: str, on_elicit, elicitations: list[str]) -> None:
    """A client pinned to 2026-07-28: discover, list, call, a call the policy denies, a call
    held for approval (the gateway's question comes as an input-required round) and, in front
    of modern_server.py (`modern-fixture`), a tool that asks its user (the upstream's own
    round). `legacy-fixture`: the same calls from a client pinned to the handshake."""
    out: dict = {}
    mode = "legacy" if scenario == "legacy-fixture" else "2026-07-28"
    sampled: list[str] = []

    async def on_sample(context, params):
        sampled.append(params.messages[0].content.text)
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text="a sampled answer"),
            model="py-client-model",
            stop_reason="endTurn",
        )

    # Only where sampling is asked for: declaring it changes what a server offers.
    sample = on_sample if scenario == "modern-everything" else None
    async with Client(url, mode=mode, elicitation_callback=on_elicit, sampling_callback=sample) as client:
        if mode != "legacy":
            # Pinned, the client adopts a discover result of its own; this asks the server.
            out["discover"] = await client.session.send_discover("2026-07-28")
        out["protocol"] = client.protocol_version
        tools = await client.list_tools()
        out["tools"] = sorted(t.name for t in tools.tools)
        if scenario == "modern-listen":
            async with client.listen(tools_list_changed=True) as subscription:
                out["honored"] = subscription.honored.model_dump(by_alias=True, exclude_none=True)
                await client.call_tool("change_tools", {})
                event = await asyncio.wait_for(subscription.__anext__(), 10)
                out["event"] = type(event).__name__
            calls = {}
        elif scenario == "modern":
            calls = {
                "price": ("get_price", {"symbol": "BTCUSDT"}),
                "denied": ("get_order_book", {"symbol": "ETHUSDT", "depth": 5000}),
                "approved": ("subscribe_to_kline_stream", {"symbol": "BTCUSDT", "interval": "1h"}),
            }
        elif scenario == "modern-everything":
            calls = {
                "elicitation": ("trigger-elicitation-request", {}),
                "sampling": ("trigger-sampling-request", {"prompt": "say hello", "maxTokens": 10}),
            }
        else:
            calls = {
                "echo": ("echo", {"message": "through the gateway"}),
                "deployed": ("deploy", {"region": "eu-west-1", "target": "v2"}),
                "denied": ("delete_everything", {}),
                "approved": ("launch", {"target": "the moon"}),
                "asked": ("ask_name", {}),
            }
        for key, (name, arguments) in calls.items():
            try:
                result = await client.call_tool(name, arguments)
            except MCPError as error:  # a JSON-RPC error answer, recorded rather than raised
                out[key] = {"error": error.error.code, "message": error.error.message}
                continue
            out[key] = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    out["elicitations"] = elicitations
    out["sampled"] = sampled
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
