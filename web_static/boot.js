// Boot progress while Pyodide loads (an external file: the CSP allows no inline script).
// Python replaces #boot once it runs; until then this shows which runtime file has arrived.
(function () {
  "use strict";
  var steps = [
    ["core.js", 15, "Loading PyScript…"],
    ["pyodide.mjs", 25, "Loading the Python runtime…"],
    ["pyodide.asm.wasm", 60, "Compiling Python (WebAssembly)…"],
    ["python_stdlib.zip", 75, "Starting Python…"],
    ["main.py", 90, "Connecting to the session…"],
  ];
  var started = Date.now();
  function show(value, text) {
    var bar = document.getElementById("boot-progress");
    var step = document.getElementById("boot-step");
    if (!bar || !step || Number(bar.value) >= value) return;
    bar.value = value;
    step.textContent = text;
  }
  if ("PerformanceObserver" in window) {
    new PerformanceObserver(function (list) {
      list.getEntries().forEach(function (entry) {
        steps.forEach(function (s) {
          if (entry.name.split("?")[0].endsWith("/" + s[0])) show(s[1], s[2]);
        });
      });
    }).observe({ type: "resource", buffered: true });
  }
  var timer = setInterval(function () {
    var elapsed = document.getElementById("boot-elapsed");
    if (!elapsed) { clearInterval(timer); return; }
    var seconds = (Date.now() - started) / 1000;
    elapsed.textContent = seconds.toFixed(0) + " s";
    if (seconds > 60) {
      document.getElementById("boot-step").textContent =
        "Still loading — this browser may lack WebAssembly, or the connection is slow.";
    }
  }, 500);
})();
