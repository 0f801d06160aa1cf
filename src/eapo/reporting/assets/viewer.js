// eapo report: the trajectory viewer. Plain JS, inlined into the page; reads the episodes
// from <script id="eapo-data" type="application/json"> and never touches the network.
// Text from the episodes is inserted as text nodes only (never as HTML).
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("eapo-data").textContent);
  var eps = data.episodes;
  var runs = data.runs;
  var PAGE = 200;
  var shown = PAGE;
  var current = [];
  var selected = -1;

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      for (var k in attrs) {
        if (k === "text") node.textContent = attrs[k];
        else if (k === "cls") node.className = attrs[k];
        else node.setAttribute(k, attrs[k]);
      }
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined) continue;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return node;
  }

  function num(x) {
    if (x === null || x === undefined) return "";
    return (Math.round(x * 1000) / 1000).toString();
  }

  function option(select, value, label) { select.appendChild(el("option", { value: value, text: label })); }

  function setup() {
    var runSel = $("f-run");
    option(runSel, "all", "all runs (" + runs.length + ")");
    runs.forEach(function (r, i) { option(runSel, String(i), r); });
    var steps = Array.from(new Set(eps.map(function (e) { return e.step; }))).sort(function (a, b) { return a - b; });
    var stepSel = $("f-step");
    option(stepSel, "all", "all steps (" + steps.length + ")");
    steps.forEach(function (s) { option(stepSel, String(s), "step " + s); });
    ["f-run", "f-step", "f-consult"].forEach(function (id) { $(id).addEventListener("change", apply); });
    ["f-rmin", "f-rmax", "f-text"].forEach(function (id) {
      $(id).addEventListener("input", apply);
      $(id).addEventListener("change", apply);  // also when a field is cleared programmatically
    });
    $("ep-more").addEventListener("click", function () { shown += PAGE; renderList(); });
    $("ep-rows").addEventListener("click", function (ev) {
      var tr = ev.target.closest("tr");
      if (tr && tr.dataset.idx !== undefined) select(+tr.dataset.idx);
    });
  }

  function filters() {
    return {
      run: $("f-run").value,
      step: $("f-step").value,
      rmin: parseFloat($("f-rmin").value),
      rmax: parseFloat($("f-rmax").value),
      consult: $("f-consult").value,
      text: $("f-text").value.trim().toLowerCase()
    };
  }

  function matches(e, f) {
    if (f.run !== "all" && e.run !== +f.run) return false;
    if (f.step !== "all" && e.step !== +f.step) return false;
    if (!isNaN(f.rmin) && e.reward < f.rmin - 1e-9) return false;
    if (!isNaN(f.rmax) && e.reward > f.rmax + 1e-9) return false;
    if (f.consult === "yes" && e.consults === 0) return false;
    if (f.consult === "no" && e.consults > 0) return false;
    if (f.text) {
      var hay = (e.question + " " + e.pid + " " + (e.answer || "") + " " + e.uid).toLowerCase();
      if (hay.indexOf(f.text) < 0) return false;
    }
    return true;
  }

  function apply() {
    var f = filters();
    current = [];
    for (var i = 0; i < eps.length; i++) if (matches(eps[i], f)) current.push(i);
    shown = PAGE;
    renderList();
  }

  function renderList() {
    var body = $("ep-rows");
    body.replaceChildren();
    var n = Math.min(shown, current.length);
    for (var j = 0; j < n; j++) {
      var i = current[j], e = eps[i];
      var correct = e.score >= 1;
      var tr = el("tr", { "data-idx": String(i), "data-step": String(e.step), "data-reward": String(e.reward),
                          "data-consults": String(e.consults), "data-run": String(e.run) },
        el("td", { text: runs[e.run] }),
        el("td", { text: String(e.step) }),
        el("td", { cls: "q", title: e.question, text: e.question }),
        el("td", { text: num(e.reward) }),
        el("td", { cls: correct ? "yes" : "no", text: (e.answer === null ? "(none)" : e.answer) + " / " + e.gold }),
        el("td", { text: String(e.turns) }),
        el("td", { text: String(e.consults) }),
        el("td", { text: e.acc + " / " + e.ref }));
      if (i === selected) tr.className = "selected";
      body.appendChild(tr);
    }
    var text = current.length + " of " + eps.length + " episodes";
    if (current.length > n) text += " (first " + n + " listed)";
    $("ep-count").textContent = text;
    $("ep-more").style.display = current.length > n ? "" : "none";
  }

  function callBox(c) {
    var verdict;
    if (c.ok) verdict = "accepted";
    else if (c.why === "refused_by_schedule") verdict = "refused by the schedule (draw " + num(c.draw) + " > rho " + num(c.rho) + ")";
    else verdict = "refused: " + c.why;
    return el("div", { cls: "call " + (c.ok ? "accepted" : "refused") },
      el("div", null, el("b", { text: "query: " }), c.q,
         c.e ? el("span", { cls: "meta", text: "  → " + c.e }) : null),
      el("div", { cls: "verdict", text: verdict }),
      c.r ? el("pre", { cls: "reply", text: c.r }) : (c.ok ? el("pre", { cls: "reply empty", text: "(empty reply)" }) : null));
  }

  function renderDetail(e) {
    var box = $("ep-detail");
    box.replaceChildren();
    box.appendChild(el("h3", { text: "Episode " + e.uid }));
    box.appendChild(el("div", { cls: "meta", text: runs[e.run] + " · step " + e.step + " · problem " + e.pid +
      " · reward " + num(e.reward) + " (score " + num(e.score) + ", penalty " + num(e.penalty) + ")" +
      " · stop: " + e.stop + (e.wf ? " · well formed" : " · malformed") }));
    box.appendChild(el("pre", { cls: "question", text: e.question }));
    if (e.ptext !== undefined) {
      box.appendChild(el("div", { cls: "meta", text: "What the policy wrote (whole; " + e.why_whole + "):" }));
      box.appendChild(el("pre", { cls: "policy", text: e.ptext }));
    }
    e.segs.forEach(function (s, k) {
      var turn = el("div", { cls: "turn" },
        el("div", { cls: "turn-head" }, el("span", { cls: "badge " + s.a, text: s.a }), "turn " + (k + 1)));
      if (s.p !== undefined) turn.appendChild(s.p ? el("pre", { cls: "policy", text: s.p }) : el("div", { cls: "empty", text: "(no tokens)" }));
      if (s.q.length || s.calls.length) {
        turn.appendChild(el("div", { cls: "meta", text: s.calls.length + " quer" + (s.calls.length === 1 ? "y" : "ies") +
          (s.drop ? " (" + s.drop + " dropped beyond K)" : "") }));
        s.calls.forEach(function (c) { turn.appendChild(callBox(c)); });
      }
      if (s.obs) turn.appendChild(el("details", { cls: "obs" }, el("summary", { text: "what the policy saw next" }),
        el("pre", { text: s.obs })));
      if (s.n) turn.appendChild(el("div", { cls: "notice", text: "notice: " + s.n }));
      if (s.iss && s.iss.length) turn.appendChild(el("div", { cls: "meta", text: "parser: " + s.iss.join(", ") }));
      box.appendChild(turn);
    });
    var correct = e.score >= 1;
    box.appendChild(el("div", { cls: "final " + (correct ? "correct" : "wrong") },
      el("b", { text: "final answer: " }), e.answer === null ? "(none)" : e.answer,
      "   ", el("b", { text: "gold: " }), e.gold === null ? "(none)" : e.gold,
      "   ", el("span", { cls: correct ? "yes" : "no", text: correct ? "✓ correct" : "✗ wrong" })));
  }

  function select(i) {
    selected = i;
    renderDetail(eps[i]);
    var rows = $("ep-rows").children;
    for (var j = 0; j < rows.length; j++) rows[j].className = (+rows[j].dataset.idx === i) ? "selected" : "";
  }

  // report.html#ep=<uid> opens that episode (links into the page, screenshots of it)
  function fromHash() {
    var m = /^#ep=(.+)$/.exec(window.location.hash);
    if (!m) return;
    var uid = decodeURIComponent(m[1]);
    for (var i = 0; i < eps.length; i++) {
      if (eps[i].uid === uid) {
        select(i);
        $("viewer").scrollIntoView();
        return;
      }
    }
  }

  setup();
  apply();
  fromHash();
  window.addEventListener("hashchange", fromHash);
  window.eapoViewer = { select: select, apply: apply, count: function () { return current.length; } };
})();
