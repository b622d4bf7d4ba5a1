"""An MCP server speaking 2026-07-28 (official Python SDK, mcp 2.x, streamable HTTP), for the
gateway's pass-through tests. Prints "listening on URL" once it serves.

Usage: python modern_server.py [--modern-only]

--modern-only refuses every handshake-era request (initialize, a 2025-xx MCP-Protocol-Version
header) with -32022 naming 2026-07-28 alone, as a server that dropped the old revisions does.
`GET /received` lists what reached /mcp (method, Mcp-Method, Mcp-Name, Mcp-Param-* headers,
protocol version, whether an envelope was in _meta): the tests' proof of what the gateway forwarded.
"""

import json
import logging
import socket
import sys
from typing import Annotated

import uvicorn
from pydantic import BaseModel, Field

from mcp.server.mcpserver import Context, Elicit, MCPServer, Resolve

MODERN = "2026-07-28"
server = MCPServer("modern-fixture", instructions="A fixture that speaks MCP 2026-07-28.")
received: list[dict] = []


class Name(BaseModel):
    name: str


def ask_for_name() -> Elicit[Name]:
    return Elicit("What is your name?", Name)


@server.tool()
def echo(message: str) -> str:
    """The message, back."""
    return message


@server.tool()
def delete_everything() -> str:
    """What a policy denies."""
    return "everything deleted"


@server.tool()
def launch(target: str) -> str:
    """What a policy holds for approval."""
    return f"launched {target}"


@server.tool()
def deploy(
    region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})], target: str
) -> str:
    """Its region is mirrored in the Mcp-Param-Region header at 2026-07-28, which the SDK checks."""
    return f"deployed {target} to {region}"


@server.tool()
async def change_tools(ctx: Context) -> str:
    """Tells every listen stream that asked for it that the tool list changed."""
    await ctx.notify_tools_changed()
    return "told the listeners"


@server.tool()
def ask_name(name: Annotated[Name, Resolve(ask_for_name)]) -> str:
    """Asks its user for a name (an input-required round at 2026-07-28)."""
    return f"Hello, {name.name}"


def recorder(app, modern_only: bool):
    async def asgi(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        if scope["path"] == "/received":
            body = json.dumps(received).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            return await send({"type": "http.response.body", "body": body})
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        try:
            parsed = json.loads(body) if body else {}
        except ValueError:
            parsed = {}
        params = parsed.get("params") if isinstance(parsed, dict) else None
        meta = (params or {}).get("_meta") or {}
        received.append({
            "http": scope["method"],
            "method": parsed.get("method") if isinstance(parsed, dict) else None,
            "name": (params or {}).get("name"),
            "mcp-method": headers.get("mcp-method"),
            "mcp-name": headers.get("mcp-name"),
            "version": headers.get("mcp-protocol-version"),
            "session": headers.get("mcp-session-id"),
            "envelope": meta.get("io.modelcontextprotocol/protocolVersion"),
            "inputResponses": (params or {}).get("inputResponses") is not None,
            "params": {k: v for k, v in headers.items() if k.startswith("mcp-param-")},
        })
        if modern_only and headers.get("mcp-protocol-version") != MODERN:
            error = {"jsonrpc": "2.0", "id": parsed.get("id") if isinstance(parsed, dict) else None,
                     "error": {"code": -32022, "message": "Unsupported protocol version",
                               "data": {"supported": [MODERN],
                                        "requested": headers.get("mcp-protocol-version")}}}
            await send({"type": "http.response.start", "status": 400,
                        "headers": [(b"content-type", b"application/json")]})
            return await send({"type": "http.response.body", "body": json.dumps(error).encode()})
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await app(scope, replay, send)

    return asgi


def main() -> None:
    logging.getLogger("mcp").setLevel(logging.WARNING)
    modern_only = "--modern-only" in sys.argv[1:]
    app = recorder(server.streamable_http_app(), modern_only)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    print(f"listening on http://127.0.0.1:{port}/mcp", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
