// Drives an MCP server with the official TypeScript SDK client and prints what it saw as JSON.
// Usage: node ts_client.mjs URL binance|everything
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";

const [url, scenario] = process.argv.slice(2);
const elicitations = [];
const client = new Client(
  { name: "mcpgate-ts-test", version: "1.0.0" },
  { capabilities: { elicitation: {} } },
);
client.setRequestHandler(ElicitRequestSchema, async (request) => {
  elicitations.push(request.params.message);
  return { action: "accept", content: { name: "Ada Lovelace", check: true } };
});
const transport = new StreamableHTTPClientTransport(new URL(url));
await client.connect(transport);

const out = { server: client.getServerVersion()?.name, sessionIssued: Boolean(transport.sessionId) };
const { tools } = await client.listTools();
out.tools = tools.map((t) => t.name).sort();

const progress = [];
const onprogress = (p) => progress.push(p.progress);
if (scenario === "binance") {
  out.price = await client.callTool({ name: "get_price", arguments: { symbol: "BTCUSDT" } });
  out.book = await client.callTool({ name: "get_order_book", arguments: { symbol: "ETHUSDT", depth: 5 } });
  out.slow = await client.callTool({ name: "get_all_book_tickers", arguments: {} }, undefined, { onprogress });
} else {
  out.echo = await client.callTool({ name: "echo", arguments: { message: "through the gateway" } });
  out.slow = await client.callTool(
    { name: "trigger-long-running-operation", arguments: { duration: 0.3, steps: 3 } },
    undefined,
    { onprogress },
  );
  out.elicitation = await client.callTool({ name: "trigger-elicitation-request", arguments: {} });
}
out.progress = progress;
out.elicitations = elicitations;
await transport.terminateSession();
await client.close();
console.log(JSON.stringify(out));
