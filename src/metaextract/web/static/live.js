// Keeps a submission's page current: polls its JSON endpoint and writes the numbers as text.
// Only textContent is ever set: values from the database are never parsed as HTML.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live) { return; }
  var src = live.getAttribute("data-src");
  function set(id, value) {
    var el = document.getElementById(id);
    if (el) { el.textContent = (value === null || value === undefined) ? "\u2014" : String(value); }
  }
  function failing(rows) {
    var body = document.querySelector("#failing tbody");
    if (!body) { return; }
    while (body.firstChild) { body.removeChild(body.firstChild); }
    rows.forEach(function (f) {
      var tr = document.createElement("tr");
      var a = document.createElement("a");
      a.href = "/files/" + encodeURIComponent(String(f.id));
      a.textContent = f.name;
      var cells = [a, f.status, f.error || ""];
      cells.forEach(function (c, i) {
        var td = document.createElement("td");
        if (typeof c === "string") { td.textContent = c; } else { td.appendChild(c); }
        if (i === 2) { td.className = "error"; }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }
  function tick() {
    fetch(src, {cache: "no-store"}).then(function (r) { return r.json(); }).then(function (s) {
      set("state", s.submission.state);
      ["done", "running", "failed", "queued", "total"].forEach(function (k) { set("jobs-" + k, s.jobs[k]); });
      set("files-ok", s.files.ok); set("files-failed", s.files.failed); set("files-pending", s.files.pending);
      set("rate", s.rate); set("eta", s.eta);
      failing(s.failing);
      live.textContent = "live (updated " + new Date().toLocaleTimeString() + ")";
      if (s.submission.state === "running") { setTimeout(tick, 1000); }
    }).catch(function () { live.textContent = "live (retrying)"; setTimeout(tick, 3000); });
  }
  setTimeout(tick, 1000);
}());
