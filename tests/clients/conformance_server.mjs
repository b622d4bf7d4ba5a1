// The server the conformance suite's server scenarios expect (@modelcontextprotocol/conformance
// 0.1.16: every tool, resource and prompt its scenarios call), written with the official
// TypeScript SDK and served over streamable HTTP with sessions, resumable streams and DNS
// rebinding protection. Prints "listening on URL" on stdout once it accepts connections.
// Usage: node conformance_server.mjs
import { randomUUID } from "node:crypto";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { createMcpExpressApp } from "@modelcontextprotocol/sdk/server/express.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import {
  CallToolRequestSchema,
  CompleteRequestSchema,
  CreateMessageResultSchema,
  ElicitResultSchema,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  ReadResourceRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { TOOLS, RESOURCES, TEMPLATES, PROMPTS, IMAGE, readResource, getPrompt } from "./conformance_fixtures.mjs";

// How soon a client comes back for a stream this server closed (the priming event's `retry:`):
// short, so the reconnection the tests wait for happens at once.
const RETRY_MS = 20;

/// An event store whose ids sort in the order the events were stored. (The SDK's example store
/// orders by `Date.now()` then a random suffix, so a priming event and the answer stored in the
/// same millisecond replay in either order, and a resuming client may never get its answer.)
class OrderedEventStore {
  #events = [];
  #next = 0;
  async storeEvent(streamId, message) {
    const eventId = `${streamId}.${String(++this.#next).padStart(8, "0")}`;
    this.#events.push({ eventId, streamId, message });
    return eventId;
  }
  async getStreamIdForEventId(eventId) {
    return this.#events.find((e) => e.eventId === eventId)?.streamId;
  }
  async replayEventsAfter(lastEventId, { send }) {
    const at = this.#events.findIndex((e) => e.eventId === lastEventId);
    if (at < 0) return "";
    const { streamId } = this.#events[at];
    for (const event of this.#events.slice(at + 1)) {
      // A priming event stores `{}`: nothing to replay.
      if (event.streamId === streamId && Object.keys(event.message).length > 0) {
        await send(event.eventId, event.message);
      }
    }
    return streamId;
  }
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const text = (value) => ({ content: [{ type: "text", text: value }] });

async function callTool({ params }, extra) {
  const note = (method, params) => extra.sendNotification({ method, params });
  // Server-to-client requests go on the call's own stream (relatedRequestId), as a call's do.
  const ask = (method, params, schema) => extra.sendRequest({ method, params }, schema);
  switch (params.name) {
    case "test_simple_text":
      return text("This is a simple text response for testing.");
    case "test_image_content":
      return { content: [{ type: "image", data: IMAGE, mimeType: "image/png" }] };
    case "test_audio_content":
      return { content: [{ type: "audio", data: "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA=", mimeType: "audio/wav" }] };
    case "test_embedded_resource":
      return { content: [{ type: "resource", resource: { uri: "test://embedded-resource", mimeType: "text/plain", text: "This is an embedded resource content." } }] };
    case "test_multiple_content_types":
      return {
        content: [
          { type: "text", text: "Multiple content types test:" },
          { type: "image", data: IMAGE, mimeType: "image/png" },
          { type: "resource", resource: { uri: "test://mixed-content-resource", mimeType: "application/json", text: '{"test":"data","value":123}' } },
        ],
      };
    case "test_tool_with_logging":
      // The scenario asks for ~50 ms between the messages: they must arrive as separate events.
      for (const [i, data] of ["Tool execution started", "Tool processing data", "Tool execution completed"].entries()) {
        if (i > 0) await pause(50);
        await note("notifications/message", { level: "info", logger: "conformance", data });
      }
      return text("Tool with logging executed successfully");
    case "test_tool_with_progress": {
      const progressToken = params._meta?.progressToken;
      for (const [i, progress] of [0, 50, 100].entries()) {
        if (i > 0) await pause(50);
        if (progressToken !== undefined) await note("notifications/progress", { progressToken, progress, total: 100 });
      }
      return text(`progress reported to ${progressToken}`);
    }
    case "test_error_handling":
      return { isError: true, content: [{ type: "text", text: "This tool intentionally returns an error for testing" }] };
    case "test_sampling": {
      const answer = await ask(
        "sampling/createMessage",
        { messages: [{ role: "user", content: { type: "text", text: params.arguments?.prompt ?? "" } }], maxTokens: 100 },
        CreateMessageResultSchema,
      );
      return text(`LLM response: ${answer.content?.text ?? ""}`);
    }
    case "test_elicitation": {
      const answer = await ask(
        "elicitation/create",
        {
          message: params.arguments?.message ?? "",
          requestedSchema: {
            type: "object",
            properties: {
              username: { type: "string", description: "User's response" },
              email: { type: "string", description: "User's email address" },
            },
            required: ["username", "email"],
          },
        },
        ElicitResultSchema,
      );
      return text(`User response: action=${answer.action}, content=${JSON.stringify(answer.content ?? {})}`);
    }
    case "test_elicitation_sep1034_defaults":
    case "test_elicitation_sep1330_enums": {
      const { message, schema } = ELICITATIONS[params.name];
      const answer = await ask("elicitation/create", { message, requestedSchema: schema }, ElicitResultSchema);
      return text(`Elicitation completed: action=${answer.action}, content=${JSON.stringify(answer.content ?? {})}`);
    }
    case "json_schema_2020_12_tool":
      return text(`called with ${JSON.stringify(params.arguments ?? {})}`);
    case "test_reconnection":
      // SEP-1699: close the call's stream after its priming event; the answer waits in the
      // event store for the client's GET with Last-Event-ID. The SDK primes, and offers
      // closeSSEStream, only when the request's MCP-Protocol-Version is 2025-11-25 or later;
      // otherwise the answer comes on the call's stream. (The suite's server-sse-polling sends
      // 2025-03-26 on its call, so it sees no primer and warns, directly and through the
      // gateway; the TypeScript client, which sends 2025-11-25, resumes: tests/sdk_clients.rs.)
      extra.closeSSEStream?.();
      return text("Reconnection test completed successfully");
    default:
      return { isError: true, content: [{ type: "text", text: `Unknown tool: ${params.name}` }] };
  }
}

const ELICITATIONS = {
  test_elicitation_sep1034_defaults: {
    message: "Please review the defaults",
    schema: {
      type: "object",
      properties: {
        name: { type: "string", description: "User name", default: "John Doe" },
        age: { type: "integer", description: "User age", default: 30 },
        score: { type: "number", description: "User score", default: 95.5 },
        status: { type: "string", description: "User status", enum: ["active", "inactive", "pending"], default: "active" },
        verified: { type: "boolean", description: "Verification status", default: true },
      },
      required: [],
    },
  },
  test_elicitation_sep1330_enums: {
    message: "Please pick from the enums",
    schema: {
      type: "object",
      properties: {
        untitledSingle: { type: "string", enum: ["option1", "option2", "option3"] },
        titledSingle: {
          type: "string",
          oneOf: [
            { const: "value1", title: "First Option" },
            { const: "value2", title: "Second Option" },
          ],
        },
        legacyEnum: { type: "string", enum: ["opt1", "opt2", "opt3"], enumNames: ["Option One", "Option Two", "Option Three"] },
        untitledMulti: { type: "array", items: { type: "string", enum: ["option1", "option2", "option3"] } },
        titledMulti: {
          type: "array",
          items: {
            anyOf: [
              { const: "value1", title: "First Choice" },
              { const: "value2", title: "Second Choice" },
            ],
          },
        },
      },
      required: [],
    },
  },
};

function mcpServer() {
  const server = new Server(
    { name: "mcpgate-conformance-fixture", version: "1.0.0" },
    {
      capabilities: {
        tools: { listChanged: true },
        resources: { subscribe: true, listChanged: true },
        prompts: { listChanged: true },
        logging: {},
        completions: {},
      },
    },
  );
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: TOOLS }));
  server.setRequestHandler(CallToolRequestSchema, callTool);
  server.setRequestHandler(ListResourcesRequestSchema, async () => ({ resources: RESOURCES }));
  server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({ resourceTemplates: TEMPLATES }));
  server.setRequestHandler(ReadResourceRequestSchema, async ({ params }) => readResource(params.uri));
  server.setRequestHandler(SubscribeRequestSchema, async () => ({}));
  server.setRequestHandler(UnsubscribeRequestSchema, async () => ({}));
  server.setRequestHandler(ListPromptsRequestSchema, async () => ({ prompts: PROMPTS }));
  server.setRequestHandler(GetPromptRequestSchema, async ({ params }) => getPrompt(params.name, params.arguments ?? {}));
  server.setRequestHandler(CompleteRequestSchema, async () => ({ completion: { values: [], total: 0, hasMore: false } }));
  return server;
}

const sessions = new Map();
const error = (res, status, message) => res.status(status).json({ jsonrpc: "2.0", id: null, error: { code: -32000, message } });

// Host header checked against 127.0.0.1/localhost: the DNS rebinding scenario.
const app = createMcpExpressApp({ host: "127.0.0.1" });
app.all("/mcp", async (req, res) => {
  try {
    const id = req.headers["mcp-session-id"];
    let transport = id === undefined ? undefined : sessions.get(id);
    if (id !== undefined && transport === undefined) return error(res, 404, "Session not found");
    if (transport === undefined) {
      if (req.method !== "POST" || req.body?.method !== "initialize") return error(res, 400, "No session");
      transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        eventStore: new OrderedEventStore(),
        retryInterval: RETRY_MS,
        onsessioninitialized: (sid) => sessions.set(sid, transport),
      });
      transport.onclose = () => sessions.delete(transport.sessionId);
      await mcpServer().connect(transport);
    }
    await transport.handleRequest(req, res, req.body);
  } catch (e) {
    console.error("conformance fixture:", e);
    if (!res.headersSent) error(res, 500, String(e));
  }
});

const listener = app.listen(0, "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${listener.address().port}/mcp`);
});
