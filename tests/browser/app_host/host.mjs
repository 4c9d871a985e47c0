// A chat host as the MCP Apps extension's reference host (examples/basic-host) builds one, for the
// browser tests: a real MCP client (the TypeScript SDK's) to our server, the extension's own
// AppBridge, and a sandbox proxy on a second origin that loads the view with the CSP built from its
// _meta.ui.csp. Bundled for the browser by build.py (esbuild); the test drives window.pbfmHost.
import { AppBridge, PostMessageTransport, getToolUiResourceUri, RESOURCE_MIME_TYPE, isToolVisibilityModelOnly }
  from "@modelcontextprotocol/ext-apps/app-bridge";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";

const HOST_INFO = { name: "pbfm-test-host", version: "1.0.0" };
const state = { client: null, tools: new Map(), sizes: [], links: [], appCalls: [], views: [] };

async function connect(serverUrl) {
  const client = new Client(HOST_INFO);
  await client.connect(new StreamableHTTPClientTransport(new URL(serverUrl)));
  const listed = await client.listTools();
  state.client = client;
  state.tools = new Map(listed.tools.map((tool) => [tool.name, tool]));
  return { tools: listed.tools.length, server: client.getServerVersion() };
}

async function readView(uri) {
  const resource = await state.client.readResource({ uri });
  const content = resource.contents[0];
  if (content.mimeType !== RESOURCE_MIME_TYPE) throw new Error(`not an MCP App: ${content.mimeType}`);
  return { html: content.text, csp: content._meta?.ui?.csp };
}

function loadSandbox(iframe, sandboxUrl, csp) {
  iframe.setAttribute("sandbox", "allow-scripts allow-same-origin allow-forms");
  const ready = new Promise((resolve) => {
    const listener = ({ source, data }) => {
      if (source === iframe.contentWindow && data?.method === "ui/notifications/sandbox-proxy-ready") {
        window.removeEventListener("message", listener);
        resolve();
      }
    };
    window.addEventListener("message", listener);
  });
  const url = new URL(sandboxUrl);
  url.searchParams.set("csp", JSON.stringify(csp ?? {}));
  iframe.src = url.href;
  return ready;
}

function newBridge(iframe, index) {
  const capabilities = state.client.getServerCapabilities();
  const bridge = new AppBridge(state.client, HOST_INFO, {
    openLinks: {}, serverTools: capabilities?.tools, serverResources: capabilities?.resources, logging: {},
  });
  bridge.onsizechange = ({ width, height }) => {
    state.sizes.push({ view: index, width, height });
    if (height !== undefined) iframe.style.height = `${height}px`;
  };
  bridge.onopenlink = async ({ url }) => {
    state.links.push(url);
    return {};
  };
  bridge.onloggingmessage = () => {};
  return bridge;
}

// As a host must: a view may call only the tools whose visibility includes "app". Set after
// connect(), which installs a plain forwarder to the client in its place.
function guardToolCalls(bridge) {
  bridge.oncalltool = async (params) => {
    state.appCalls.push(params.name);
    const tool = state.tools.get(params.name);
    if (!tool || isToolVisibilityModelOnly(tool)) throw new Error(`${params.name} is not callable by apps`);
    return state.client.callTool(params);
  };
}

function withGrantToken(result, token) {
  const meta = structuredClone(result._meta);
  const [key] = Object.keys(meta).filter((name) => meta[name]?.token);
  if (!key) throw new Error("the result carries no grant to replace");
  meta[key].token = token;
  return { ...result, _meta: meta };
}

// Call a tool as the model would and render the view it names; resolves with the tool result.
// grantToken: hand the view this token in the result's grant instead of the one it carries (a token
// the test signed as long ago as it wants: a chat reopened after the token expired, say).
async function show(name, args, sandboxUrl, grantToken = null) {
  const tool = state.tools.get(name);
  if (!tool) throw new Error(`unknown tool ${name}`);
  const uri = getToolUiResourceUri(tool);
  if (!uri) throw new Error(`${name} names no view`);
  const index = state.views.length;
  const started = performance.now();
  const resultPromise = state.client.callTool({ name, arguments: args });
  const { html, csp } = await readView(uri);
  const iframe = document.createElement("iframe");
  iframe.id = `view-${index}`;
  iframe.className = "view";
  document.getElementById("chat").appendChild(iframe);
  await loadSandbox(iframe, sandboxUrl, csp);
  const bridge = newBridge(iframe, index);
  const initialized = new Promise((resolve) => { bridge.oninitialized = resolve; });
  await bridge.connect(new PostMessageTransport(iframe.contentWindow, iframe.contentWindow));
  guardToolCalls(bridge);
  await bridge.sendSandboxResourceReady({ html, csp });
  await initialized;
  await bridge.sendToolInput({ arguments: args });
  const result = await resultPromise;
  await bridge.sendToolResult(grantToken ? withGrantToken(result, grantToken) : result);
  state.views.push({ bridge, iframe, started, initializedAt: performance.now() });
  return { result, csp, initializedMs: performance.now() - started };
}

async function callTool(name, args) {
  return state.client.callTool({ name, arguments: args });
}

window.pbfmHost = {
  connect, show, callTool,
  tool: (name) => state.tools.get(name),
  sizes: () => state.sizes.slice(),
  links: () => state.links.slice(),
  appCalls: () => state.appCalls.slice(),
};
document.documentElement.dataset.host = "ready";

// By hand (see the README): /?server=<our /mcp URL>&session=<id> creates that session and shows its view.
const query = new URLSearchParams(window.location.search);
if (query.get("server") && query.get("session")) {
  const sandbox = query.get("sandbox") ?? `${window.location.protocol}//${window.location.hostname}:${
    Number(window.location.port) + 1}/sandbox.html`;
  connect(query.get("server"))
    .then(() => show("webpage_create_session", { session_id: query.get("session") }, sandbox))
    .catch((error) => { document.getElementById("chat").textContent = String(error); });
}
