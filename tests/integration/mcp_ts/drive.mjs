// Run by Node with the TypeScript SDK from npm (@modelcontextprotocol/sdk): drive a session as an
// assistant would and print what the client saw as one JSON line.
// Usage: node drive.mjs <mcp-url> <session-id> [bearer-token]
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, sessionId, token] = process.argv.slice(2);
const headers = token ? { Authorization: `Bearer ${token}` } : {};
const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
const client = new Client({ name: "pbfm-ts-driver", version: "1.0.0" });
await client.connect(transport);

const tools = (await client.listTools()).tools;
const created = await client.callTool({ name: "webpage_create_session", arguments: { session_id: sessionId } });
const price = await client.callTool({
  name: "webpage_update_hash_price_display", arguments: { session_id: sessionId, source: "simulated" },
});
const state = await client.callTool({ name: "webpage_get_page_state", arguments: { session_id: sessionId } });
const wrong = await client.callTool({ name: "webpage_get_page_state", arguments: { session_id: 42 } });
const templates = (await client.listResourceTemplates()).resourceTemplates;
const read = await client.readResource({ uri: `pbfm://sessions/${sessionId}/state` });
const prompts = (await client.listPrompts()).prompts;
await client.setLoggingLevel("warning");

console.log(JSON.stringify({
  protocol: transport.protocolVersion ?? null,
  server: client.getServerVersion(),
  instructions: client.getInstructions() ?? null,
  capabilities: client.getServerCapabilities(),
  annotations: Object.fromEntries(tools.map((t) => [t.name, { title: t.title ?? null, ...t.annotations }])),
  created: created.structuredContent,
  published_price: price.structuredContent.price.display_price,
  state: state.structuredContent,
  state_text: state.content[0].text,
  wrong_is_error: wrong.isError === true,
  wrong_text: wrong.content[0].text,
  templates: templates.map((t) => t.uriTemplate),
  resource: JSON.parse(read.contents[0].text),
  prompts: prompts.map((p) => p.name),
}));
await client.close();
