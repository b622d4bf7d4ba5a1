"""An MCP server on stdio (official Python SDK, mcp 2.x), for the gateway's --upstream-command tests.

Usage: python stdio_server.py
"""

import os

from mcp.server.mcpserver import MCPServer

server = MCPServer("stdio-fixture")


@server.tool()
def whoami() -> str:
    """This server's process id: one process per gateway session."""
    return str(os.getpid())


@server.tool()
def echo(text: str) -> str:
    """The text, back."""
    return text


@server.tool()
def environment(name: str) -> str:
    """The value of an environment variable, or "absent"."""
    return os.environ.get(name, "absent")


@server.tool()
def crash() -> str:
    """Exits the process in the middle of the call."""
    os._exit(3)


if __name__ == "__main__":
    server.run()
