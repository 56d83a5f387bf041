// Keyboard review: j/k move, Enter opens, a accept, r reject, e edit. Patches are rendered by diff2html,
// read from JSON script blocks (never from HTML), so patch text cannot become markup.
(function () {
  "use strict";
  document.querySelectorAll(".diff[data-source]").forEach(function (el) {
    var src = document.getElementById(el.dataset.source);
    var patch = src ? JSON.parse(src.textContent) : "";
    if (!patch.trim()) { el.textContent = "(empty patch)"; return; }
    el.innerHTML = Diff2Html.html(patch, { drawFileList: false, outputFormat: "side-by-side" });
  });
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr.item"));
  var at = 0;
  function mark() { rows.forEach(function (r, n) { r.classList.toggle("current", n === at); }); }
  if (rows.length) mark();
  function decide(row, action) {
    var body = new URLSearchParams({ token: document.body.dataset.token, run: row.dataset.run,
      instance_id: row.dataset.instance, attempt: row.dataset.attempt, action: action });
    fetch("/api/decision", { method: "POST", body: body, headers: { "HX-Request": "true" } })
      .then(function (r) { return r.text(); })
      .then(function (html) { row.querySelector(".decided").innerHTML = html; });
  }
  document.addEventListener("keydown", function (ev) {
    var t = ev.target.tagName;
    if (t === "INPUT" || t === "TEXTAREA" || ev.target.isContentEditable || ev.ctrlKey || ev.metaKey) return;
    if (rows.length) {
      if (ev.key === "j") { at = Math.min(at + 1, rows.length - 1); mark(); }
      else if (ev.key === "k") { at = Math.max(at - 1, 0); mark(); }
      else if (ev.key === "Enter" || ev.key === "e") { location.href = rows[at].dataset.href; }
      else if (ev.key === "a") { decide(rows[at], "accept"); }
      else if (ev.key === "r") { decide(rows[at], "reject"); }
      return;
    }
    var click = { a: "accept", r: "reject", e: "edit", j: "next", k: "prev" }[ev.key];
    var el = click && document.getElementById(click);
    if (el) { el.click(); ev.preventDefault(); }
  });
  // The correction editor: CodeMirror's merge view, model patch (read-only) against the correction,
  // mirrored into the form's textarea so "run tests" and "save correction" send what is in the editor.
  var edit = document.getElementById("edit");
  var merge = null;
  if (edit) edit.addEventListener("click", function () {
    var area = document.getElementById("corrected");
    var box = document.getElementById("merge");
    ["correct", "runtests"].forEach(function (id) { document.getElementById(id).hidden = false; });
    if (merge || !window.DevloopCM) { area.hidden = false; area.focus(); return; }
    var CM = window.DevloopCM;
    var model = JSON.parse(document.getElementById("model-patch").textContent);
    box.hidden = false;
    merge = new CM.MergeView({
      a: { doc: model, extensions: [CM.basicSetup, CM.diffLanguage, CM.EditorState.readOnly.of(true)] },
      b: { doc: area.value, extensions: [CM.basicSetup, CM.diffLanguage, CM.EditorView.updateListener.of(
        function (u) { if (u.docChanged) area.value = u.state.doc.toString(); })] },
      parent: box });
    merge.b.focus();
  });
})();
