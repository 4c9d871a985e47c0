// The sandbox proxy of the test host (the extension's double-iframe design): served from a second
// origin with the view's CSP as its HTTP header (server.py builds it from _meta.ui.csp), it writes
// the view's HTML into an inner iframe, which inherits that policy, and relays JSON-RPC between
// the host (its parent) and the view, keeping the sandbox-* notifications for itself.
(function () {
  "use strict";
  if (window.self === window.top) throw new Error("sandbox.html only runs inside the host's iframe");
  var hostOrigin = new URL(document.referrer).origin;
  var ownOrigin = window.location.origin;
  var inner = document.createElement("iframe");
  inner.setAttribute("sandbox", "allow-scripts allow-same-origin allow-forms");
  document.body.appendChild(inner);

  window.addEventListener("message", function (event) {
    var data = event.data;
    if (event.source === window.parent) {
      if (event.origin !== hostOrigin) return;
      if (data && data.method === "ui/notifications/sandbox-resource-ready") {
        var doc = inner.contentDocument;
        doc.open();
        doc.write(data.params.html);
        doc.close();
      } else if (inner.contentWindow) {
        inner.contentWindow.postMessage(data, "*");
      }
    } else if (event.source === inner.contentWindow) {
      if (event.origin !== ownOrigin) return;
      window.parent.postMessage(data, hostOrigin);
    }
  });
  window.parent.postMessage({ jsonrpc: "2.0", method: "ui/notifications/sandbox-proxy-ready", params: {} },
                            hostOrigin);
})();
