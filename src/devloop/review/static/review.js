// The review pages' behaviour. Everything shown comes from a model: patches are read from JSON script
// blocks and drawn by diff2html (which escapes them), messages are set as textContent, never as markup.
(function () {
  "use strict";
  var token = document.body.dataset.token;

  function problem(text) {
    var box = document.getElementById("form-problem") || document.getElementById("problems");
    var p = document.createElement("p");
    p.className = "problem";
    p.textContent = text;
    if (box.id === "form-problem") { box.textContent = ""; box.hidden = false; }
    box.appendChild(p);
  }
  function errorText(status, body) {
    try { return JSON.parse(body).error || body; } catch (e) { return body || "HTTP " + status; }
  }

  // Diffs: original -> model patch, and original -> correction (redrawn as the correction is edited).
  function draw(el, patch) {
    if (!el) return;
    if (!patch.trim()) { el.textContent = "(empty patch)"; return; }
    var html = window.Diff2Html ? Diff2Html.html(patch, { drawFileList: false, outputFormat: "line-by-line" }) : "";
    if (html.indexOf("d2h-file-wrapper") < 0) { el.textContent = "(not a unified diff; shown as text)\n" + patch; el.classList.add("raw"); return; }
    el.classList.remove("raw");
    el.innerHTML = html;
  }
  var modelSrc = document.getElementById("model-patch");
  var model = modelSrc ? JSON.parse(modelSrc.textContent) : "";
  var keySrc = document.getElementById("item-key");
  var draftKey = keySrc ? "devloop-review-draft:" + JSON.parse(keySrc.textContent) : null;
  var area = document.getElementById("corrected");
  var correctionDiff = document.getElementById("correction-diff");
  draw(document.getElementById("model-diff"), model);

  // An unsaved correction survives a reload or a server that went away: it is kept in this browser.
  var draft = null;
  try { draft = draftKey && localStorage.getItem(draftKey); } catch (e) { draft = null; }
  if (area && draft !== null && draft !== model) {
    area.value = draft;
    document.getElementById("draft-note").hidden = false;
  }
  if (area) draw(correctionDiff, area.value);
  var pending = null;
  function corrected(text) {
    area.value = text;
    try { if (draftKey) localStorage.setItem(draftKey, text); } catch (e) { /* private mode: no drafts */ }
    clearTimeout(pending);
    pending = setTimeout(function () { draw(correctionDiff, text); }, 250);
  }

  // The queue: j/k move, Enter opens, e opens with the correction editor started, a accepts, r rejects;
  // filters apply as they change.
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr.item"));
  var at = 0;
  function mark() {
    rows.forEach(function (r, n) { r.classList.toggle("current", n === at); });
    if (rows[at]) rows[at].scrollIntoView({ block: "nearest" });
  }
  if (rows.length) mark();
  document.querySelectorAll("#filters select").forEach(function (s) {
    s.addEventListener("change", function () { document.getElementById("filters").submit(); });
  });
  function decide(row, action) {
    var body = new URLSearchParams({ token: token, run: row.dataset.run,
      instance_id: row.dataset.instance, attempt: row.dataset.attempt, action: action });
    fetch("/api/decision", { method: "POST", body: body, headers: { "HX-Request": "true" } })
      .then(function (r) {
        return r.text().then(function (text) {
          if (!r.ok) throw new Error(errorText(r.status, text));
          row.querySelector(".decided").innerHTML = text;  // the server's escaped fragment
        });
      })
      .catch(function (e) { problem(row.dataset.instance + ": not saved: " + e.message); });
  }
  document.addEventListener("keydown", function (ev) {
    var t = ev.target.tagName;
    if (t === "INPUT" || t === "TEXTAREA" || t === "SELECT" || ev.target.isContentEditable || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (rows.length) {
      if (ev.key === "j") { at = Math.min(at + 1, rows.length - 1); mark(); }
      else if (ev.key === "k") { at = Math.max(at - 1, 0); mark(); }
      else if (ev.key === "Enter") { location.href = rows[at].dataset.href; }
      else if (ev.key === "e") { location.href = rows[at].dataset.href + "#edit"; }  // opened editing
      else if (ev.key === "a") { decide(rows[at], "accept"); }
      else if (ev.key === "r") { decide(rows[at], "reject"); }
      return;
    }
    var click = { a: "accept", r: "reject", e: "edit", j: "next", k: "prev" }[ev.key];
    var el = click && document.getElementById(click);
    if (el) { el.click(); ev.preventDefault(); }
  });

  // htmx writes: a refusal or a server that is gone is said in the page; the editor keeps its text.
  document.body.addEventListener("htmx:responseError", function (ev) {
    var xhr = ev.detail.xhr;
    problem("not saved: " + errorText(xhr.status, xhr.responseText));
  });
  document.body.addEventListener("htmx:sendError", function () {
    problem("the review server did not answer: nothing was saved; the correction is kept in this browser");
  });
  var saving = null;  // which decision button sent the form
  ["accept", "reject", "correct"].forEach(function (id) {
    var b = document.getElementById(id);
    if (b) b.addEventListener("click", function () { saving = id; });
  });
  document.body.addEventListener("htmx:afterRequest", function (ev) {
    var box = document.getElementById("form-problem");
    if (ev.detail.successful && box) box.hidden = true;
    var path = ev.detail.requestConfig && ev.detail.requestConfig.path;
    if (ev.detail.successful && path === "/api/decision" && saving === "correct") {
      try { localStorage.removeItem(draftKey); } catch (e) { /* nothing kept */ }
      document.getElementById("draft-note").hidden = true;
    }
  });

  // The correction editor: CodeMirror's merge view, model patch (read-only) against the correction, with
  // diff highlighting; mirrored into the form's textarea so "run tests" and "save" send the editor's text.
  // The editor (the heaviest file) is fetched only when a correction is started.
  var edit = document.getElementById("edit");
  var merge = null;
  var loading = false;
  function plainEditor() {
    area.hidden = false;
    area.addEventListener("input", function () { corrected(area.value); });
    area.focus();
  }
  function openEditor() {
    var CM = window.DevloopCM;
    var box = document.getElementById("merge");
    box.hidden = false;
    merge = new CM.MergeView({
      a: { doc: model, extensions: [CM.basicSetup, CM.diffLanguage, CM.EditorState.readOnly.of(true)] },
      b: { doc: area.value, extensions: [CM.basicSetup, CM.diffLanguage, CM.EditorView.updateListener.of(
        function (u) { if (u.docChanged) corrected(u.state.doc.toString()); })] },
      parent: box });
    merge.b.focus();
  }
  if (edit) edit.addEventListener("click", function () {
    ["correct", "runtests"].forEach(function (id) { document.getElementById(id).hidden = false; });
    if (merge) { merge.b.focus(); return; }
    if (window.DevloopCM) { openEditor(); return; }
    if (loading) return;
    loading = true;
    var s = document.createElement("script");
    s.src = "/static/vendor/codemirror-merge.min.js";
    s.onload = function () { if (window.DevloopCM) openEditor(); else plainEditor(); };
    s.onerror = function () { problem("the code editor did not load; editing as plain text"); plainEditor(); };
    document.head.appendChild(s);
  });
  if (edit && location.hash === "#edit") edit.click();  // `e` in the queue: the item, its editor open
})();
