// What conformance_server.mjs lists: the tools, resources and prompts the conformance suite's
// server scenarios name, with the contents their checks look for.
import { McpError, ErrorCode } from "@modelcontextprotocol/sdk/types.js";

// A 1x1 PNG.
export const IMAGE =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

const noArguments = { type: "object", properties: {} };
const tool = (name, description, inputSchema = noArguments) => ({ name, description, inputSchema });

export const TOOLS = [
  tool("test_simple_text", "Returns one text block"),
  tool("test_image_content", "Returns an image"),
  tool("test_audio_content", "Returns audio"),
  tool("test_embedded_resource", "Returns an embedded resource"),
  tool("test_multiple_content_types", "Returns text, an image and a resource"),
  tool("test_tool_with_logging", "Logs three messages while it runs"),
  tool("test_tool_with_progress", "Reports progress 0, 50, 100"),
  tool("test_error_handling", "Always fails with isError"),
  tool("test_sampling", "Asks the client to sample", {
    type: "object",
    properties: { prompt: { type: "string", description: "The prompt to send to the LLM" } },
    required: ["prompt"],
  }),
  tool("test_elicitation", "Asks the user through the client", {
    type: "object",
    properties: { message: { type: "string", description: "The message to show the user" } },
    required: ["message"],
  }),
  tool("test_elicitation_sep1034_defaults", "Elicits with a default for every primitive type"),
  tool("test_elicitation_sep1330_enums", "Elicits with every enum form"),
  tool("test_reconnection", "Closes its stream after the priming event; the answer comes on resumption"),
  // SEP-1613: these 2020-12 keywords must reach the client as written.
  tool("json_schema_2020_12_tool", "Tool with JSON Schema 2020-12 features", {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    type: "object",
    $defs: { address: { type: "object", properties: { street: { type: "string" }, city: { type: "string" } } } },
    properties: { name: { type: "string" }, address: { $ref: "#/$defs/address" } },
    additionalProperties: false,
  }),
];

export const RESOURCES = [
  { uri: "test://static-text", name: "static-text", description: "A static text resource", mimeType: "text/plain" },
  { uri: "test://static-binary", name: "static-binary", description: "A static PNG", mimeType: "image/png" },
  { uri: "test://watched-resource", name: "watched-resource", description: "A resource to subscribe to", mimeType: "text/plain" },
];

export const TEMPLATES = [
  { uriTemplate: "test://template/{id}/data", name: "template", description: "Data for an id", mimeType: "application/json" },
];

export function readResource(uri) {
  const one = (content) => ({ contents: [{ uri, ...content }] });
  switch (uri) {
    case "test://static-text":
      return one({ mimeType: "text/plain", text: "This is the content of the static text resource." });
    case "test://static-binary":
      return one({ mimeType: "image/png", blob: IMAGE });
    case "test://watched-resource":
      return one({ mimeType: "text/plain", text: "Watched resource content" });
  }
  const id = /^test:\/\/template\/([^/]+)\/data$/.exec(uri)?.[1];
  if (id !== undefined) {
    return one({ mimeType: "application/json", text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }) });
  }
  throw new McpError(ErrorCode.InvalidParams, `Resource not found: ${uri}`);
}

const argument = (name, description) => ({ name, description, required: true });

export const PROMPTS = [
  { name: "test_simple_prompt", description: "A prompt without arguments" },
  {
    name: "test_prompt_with_arguments",
    description: "A prompt with two arguments",
    arguments: [argument("arg1", "First test argument"), argument("arg2", "Second test argument")],
  },
  {
    name: "test_prompt_with_embedded_resource",
    description: "A prompt embedding a resource",
    arguments: [argument("resourceUri", "URI of the resource to embed")],
  },
  { name: "test_prompt_with_image", description: "A prompt with an image" },
];

export function getPrompt(name, args) {
  const user = (content) => ({ role: "user", content });
  const say = (text) => user({ type: "text", text });
  switch (name) {
    case "test_simple_prompt":
      return { messages: [say("This is a simple prompt for testing.")] };
    case "test_prompt_with_arguments":
      return { messages: [say(`Prompt with arguments: arg1='${args.arg1}', arg2='${args.arg2}'`)] };
    case "test_prompt_with_embedded_resource":
      return {
        messages: [
          user({ type: "resource", resource: { uri: args.resourceUri, mimeType: "text/plain", text: "Embedded resource content for testing." } }),
          say("Please process the embedded resource above."),
        ],
      };
    case "test_prompt_with_image":
      return { messages: [user({ type: "image", data: IMAGE, mimeType: "image/png" }), say("Please analyze the image above.")] };
  }
  throw new McpError(ErrorCode.InvalidParams, `Prompt not found: ${name}`);
}
