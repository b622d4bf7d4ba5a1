// Drives an MCP server with the official TypeScript SDK client and prints what it saw as JSON.
// Usage: node ts_client.mjs URL binance|everything|resume
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
// Every GET that resumes a stream, by the Last-Event-ID it sends.
const resumes = [];
const transport = new StreamableHTTPClientTransport(new URL(url), {
  // A stream closed before its answer is resumed at once (a server's `retry:` overrides these).
  reconnectionOptions: { initialReconnectionDelay: 20, maxReconnectionDelay: 200, reconnectionDelayGrowFactor: 2, maxRetries: 10 },
  fetch: (input, init) => {
    const headers = new Headers(init?.headers);
    if (init?.method === "GET" && headers.has("last-event-id")) resumes.push(headers.get("last-event-id"));
    return fetch(input, init);
  },
});
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
} else if (scenario === "resume") {
  // conformance_server.mjs's test_reconnection: its stream is primed and closed before the answer.
  const tokens = [];
  out.resumed = await client.callTool({ name: "test_reconnection", arguments: {} }, undefined, {
    onresumptiontoken: (token) => tokens.push(token),
    // Fails the call with "Request timed out" rather than hanging when no resumption comes.
    timeout: 30000,
  });
  out.primedWith = tokens[0] ?? null;
  out.resumedWith = resumes;
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
