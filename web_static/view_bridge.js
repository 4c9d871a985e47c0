// The MCP Apps side of the session view inside an AI chat (web_static/view.html).
//
// It speaks the view's half of the extension's JSON-RPC over postMessage with the host (through the
// host's sandbox proxy, which relays): ui/initialize, ui/notifications/initialized, the tool input and
// result, ui/notifications/size-changed, ui/open-link, ui/resource-teardown, ping; and tools/call for
// one read-only tool (a fresh view token when the one in hand expired).
//
// Python (web_py/view_main.py) does everything else. It reads window.pbfmView:
//   toolResult() -> Promise of the tool result (CallToolResult) as JSON text
//   renew(sessionId) -> Promise of a fresh result of the renewal tool as JSON text, or null
// Before loading PyScript this checks that the frame may run it: PyScript needs eval (Function())
// and Pyodide needs WebAssembly compilation, which a host's CSP may forbid. Then the view says so
// and links to the session page instead of failing silently.
(function () {
  "use strict";
  var PROTOCOL_VERSION = "2026-01-26";
  var GRANT = "pb-fm-webpage/view";  // web_py/view_grant.py GRANT_META
  var PYTHON_TIMEOUT_MS = 60000;
  var script = document.currentScript;
  var coreUrl = script.dataset.pyscriptCore;
  var renewalTool = script.dataset.renewalTool;
  var host = window.parent;
  var nextId = 1;
  var pending = {};
  var result = null;
  var resultWaiters = [];
  var hostCapabilities = {};

  function send(message) {
    // The host's origin is not known here (it is the sandbox proxy's parent); nothing sent is secret.
    host.postMessage(message, "*");
  }
  function request(method, params) {
    var id = nextId++;
    return new Promise(function (resolve, reject) {
      pending[id] = { resolve: resolve, reject: reject };
      send({ jsonrpc: "2.0", id: id, method: method, params: params });
    });
  }
  function notify(method, params) {
    var message = { jsonrpc: "2.0", method: method };
    if (params !== undefined) message.params = params;
    send(message);
  }
  function answer(id, outcome) {
    send(Object.assign({ jsonrpc: "2.0", id: id }, outcome));
  }

  function grantOf(toolResult) {
    var meta = toolResult && toolResult._meta;
    return (meta && meta[GRANT]) || null;
  }
  function pageUrlOf(toolResult) {
    var grant = grantOf(toolResult);
    var structured = toolResult && toolResult.structuredContent;
    return (grant && grant.page_url) || (structured && structured.page_url) || null;
  }
  function showLink(url) {
    if (!url || !/^https?:\/\//.test(url)) return;
    var link = document.getElementById("view-link");
    link.href = url;
    document.getElementById("view-footer").hidden = false;
  }
  function receivedResult(toolResult) {
    result = toolResult;
    showLink(pageUrlOf(toolResult));
    resultWaiters.splice(0).forEach(function (resolve) { resolve(JSON.stringify(toolResult)); });
  }

  window.addEventListener("message", function (event) {
    if (event.source !== host) return;
    var message = event.data;
    if (!message || message.jsonrpc !== "2.0") return;
    if (message.method === undefined && message.id !== undefined) {
      var waiter = pending[message.id];
      delete pending[message.id];
      if (!waiter) return;
      if (message.error) waiter.reject(new Error(message.error.message || "request refused"));
      else waiter.resolve(message.result);
      return;
    }
    switch (message.method) {
      case "ui/notifications/tool-result":
        receivedResult(message.params);
        break;
      case "ui/notifications/tool-cancelled":
        receivedResult({ isError: true, content: [{ type: "text", text: "The tool call was cancelled." }] });
        break;
      case "ui/resource-teardown":
      case "ping":
        if (message.id !== undefined) answer(message.id, { result: {} });
        break;
      default:
        // Notifications we have no use for (tool-input, host-context-changed…) are ignored; a
        // request we do not serve gets the JSON-RPC answer for that.
        if (message.id !== undefined) {
          answer(message.id, { error: { code: -32601, message: "Method not found: " + message.method } });
        }
    }
  });

  // --- size: the host sizes the iframe to what the view reports --------------------------------
  var lastWidth = 0;
  var lastHeight = 0;
  var measuring = false;
  function reportSize() {
    if (measuring) return;
    measuring = true;
    requestAnimationFrame(function () {
      measuring = false;
      var root = document.documentElement;
      var before = root.style.height;
      root.style.height = "max-content";
      var height = Math.ceil(root.getBoundingClientRect().height);
      root.style.height = before;
      var width = Math.ceil(window.innerWidth);
      if (width === lastWidth && height === lastHeight) return;
      lastWidth = width;
      lastHeight = height;
      notify("ui/notifications/size-changed", { width: width, height: height });
    });
  }

  // --- can this frame run the runtime? ----------------------------------------------------------
  function evalAllowed() {
    try {
      return Function("return 1")() === 1;
    } catch (error) {
      return false;
    }
  }
  function wasmAllowed() {
    try {
      new WebAssembly.Module(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
      return true;
    } catch (error) {
      return false;
    }
  }
  function cannotRun(reason) {
    var app = document.getElementById("app");
    app.dataset.viewState = "unsupported";
    app.innerHTML = "";
    var card = document.createElement("section");
    card.className = "card notice";
    card.dataset.testid = "view-unsupported";
    var text = document.createElement("p");
    text.textContent = "This chat app does not let the live page run here: " + reason +
      " The page is the same for everyone; open it in a browser tab with the link below.";
    card.appendChild(text);
    app.appendChild(card);
    document.getElementById("view-footer").hidden = false;
    reportSize();
  }
  function loadPython() {
    var missing = [];
    if (!evalAllowed()) missing.push("its security policy forbids 'unsafe-eval', which PyScript needs");
    if (!wasmAllowed()) missing.push("its security policy forbids compiling WebAssembly, which Python needs");
    if (missing.length) {
      cannotRun(missing.join("; ") + ".");
      return;
    }
    import(coreUrl).catch(function (error) {
      cannotRun("the Python runtime could not be loaded (" + error + ").");
    });
    setTimeout(function () {
      if (!document.getElementById("app").hasAttribute("data-python")) {
        cannotRun("the Python runtime did not start within " + PYTHON_TIMEOUT_MS / 1000 + " s.");
      }
    }, PYTHON_TIMEOUT_MS);
  }

  window.pbfmView = {
    toolResult: function () {
      if (result !== null) return Promise.resolve(JSON.stringify(result));
      return new Promise(function (resolve) { resultWaiters.push(resolve); });
    },
    renew: function (sessionId) {
      if (!hostCapabilities.serverTools) return Promise.resolve(null);
      return request("tools/call", { name: renewalTool, arguments: { session_id: sessionId } })
        .then(function (fresh) { return JSON.stringify(fresh); });
    },
  };

  document.getElementById("view-link").addEventListener("click", function (event) {
    // A sandboxed frame may not open windows itself; the host opens the link (ui/open-link).
    if (!hostCapabilities.openLinks) return;
    event.preventDefault();
    var url = event.currentTarget.href;
    request("ui/open-link", { url: url }).catch(function () { window.open(url, "_blank", "noopener"); });
  });

  request("ui/initialize", {
    appInfo: { name: "pb-fm-webpage session view", version: "1" },
    appCapabilities: { availableDisplayModes: ["inline"] },
    protocolVersion: PROTOCOL_VERSION,
  }).then(function (initialized) {
    hostCapabilities = (initialized && initialized.hostCapabilities) || {};
    notify("ui/notifications/initialized");
    var observer = new ResizeObserver(reportSize);
    observer.observe(document.documentElement);
    observer.observe(document.body);
    reportSize();
  }, function (error) {
    console.error("ui/initialize failed: " + error);
  });
  loadPython();
})();
