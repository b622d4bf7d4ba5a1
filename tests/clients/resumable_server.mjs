// An MCP server (official TypeScript SDK) that answers its one tool on a stream it has closed:
// it primes the call's SSE stream (an event id, a retry, an empty data line), closes it, and
// the answer waits in its event store until the client reconnects with GET + Last-Event-ID
// (2025-11-25, SEP-1699). Prints "listening on port N" on stderr.
// Usage: PORT=N node resumable_server.mjs
import { createServer } from "node:http";
import { randomUUID } from "node:crypto";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { InMemoryEventStore } from "@modelcontextprotocol/sdk/examples/shared/inMemoryEventStore.js";
import { z } from "zod";

const transports = new Map();

function server() {
  const mcp = new McpServer({ name: "resumable", version: "1.0.0" });
  mcp.tool("answer-after-reconnect", { word: z.string() }, async ({ word }, extra) => {
    extra.closeSSEStream?.();
    return { content: [{ type: "text", text: `resumed: ${word}` }] };
  });
  return mcp;
}

createServer(async (req, res) => {
  const id = req.headers["mcp-session-id"];
  let transport = id && transports.get(id);
  if (!transport) {
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      eventStore: new InMemoryEventStore(),
      // Long enough that the answer is in the event store before the client comes back for it.
      retryInterval: 1000,
      onsessioninitialized: (sid) => transports.set(sid, transport),
    });
    await server().connect(transport);
  }
  await transport.handleRequest(req, res);
}).listen(Number(process.env.PORT), "127.0.0.1", () => {
  console.error(`listening on port ${process.env.PORT}`);
});
