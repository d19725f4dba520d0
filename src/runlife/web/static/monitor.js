// runlife monitor: live updates over server-sent events, the log viewer, the graph.
// Plain JavaScript, no build step; every page reads without it.
(function () {
  "use strict";

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

  // -- the live indicator and the run events ------------------------------------
  function liveEvents() {
    var live = $("#live");
    if (!live) return;
    var url = live.getAttribute("data-events");
    var last = live.getAttribute("data-after") || "";
    var source = null, delay = 1000, timer = null;

    function show(state, text) {
      live.setAttribute("data-state", state);
      live.textContent = text;
    }
    function connect() {
      show("connecting", "Connecting");
      var full = url + (last ? (url.indexOf("?") < 0 ? "?" : "&") + "after=" + encodeURIComponent(last) : "");
      source = new EventSource(full);
      source.onopen = function () { delay = 1000; show("live", "Live"); };
      source.onerror = function () {
        if (source.readyState === EventSource.CLOSED) {
          show("error", "Error");
          source.close();
          retry();
        } else {
          show("connecting", "Connecting");
        }
      };
      source.addEventListener("reset", function () { window.location.reload(); });
      source.addEventListener("run", function (e) {
        if (e.lastEventId) last = e.lastEventId;
        var data = JSON.parse(e.data);
        onRun(data);
      });
      source.addEventListener("message", function (e) { if (e.lastEventId) last = e.lastEventId; });
    }
    function retry() {
      if (timer) return;
      timer = setTimeout(function () { timer = null; connect(); }, delay);
      delay = Math.min(delay * 2, 15000);
    }
    window.addEventListener("offline", function () {
      if (source) source.close();
      show("disconnected", "Disconnected");
    });
    window.addEventListener("online", function () { if (source) source.close(); connect(); });
    connect();
  }

  function onRun(data) {
    var row = document.getElementById("run-" + data.run);
    if (row && data.row) {
      var holder = document.createElement("tbody");
      holder.innerHTML = data.row;  // rendered and escaped by the server
      var fresh = holder.querySelector("tr");
      if (fresh) row.parentNode.replaceChild(fresh, row);
    } else if ($("#runs") && data.kind === "transition") {
      var note = $("#new-runs");
      if (note) note.hidden = false;
    }
    var part = $("#live-part");
    var live = $("#live");
    if (part && live && live.getAttribute("data-fragment")) refreshPart(live.getAttribute("data-fragment"));
  }

  // One fetch of the run's live part at a time; events meanwhile ask for one more.
  var fetching = false, again = false;
  function refreshPart(url) {
    if (fetching) { again = true; return Promise.resolve(); }
    fetching = true;
    return fetchPart(url).then(function () {
      fetching = false;
      if (again) { again = false; return refreshPart(url); }
    }, function () { fetching = false; });
  }

  function fetchPart(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) return;
      return r.text().then(function (html) {
        var part = $("#live-part");
        if (!part) return;
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var fresh = holder.querySelector("#live-part");
        if (fresh) { part.parentNode.replaceChild(fresh, part); actionForms(); }
      });
    });
  }

  // Actions without leaving the page: post the form, then show the run as it is.
  function actionForms() {
    $all(".actions form").forEach(function (form) {
      if (form.getAttribute("data-bound")) return;
      form.setAttribute("data-bound", "1");
      form.addEventListener("submit", function (e) {
        e.preventDefault();
        fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin" })
          .then(function (r) {
            if (!r.ok) {
              return r.text().then(function (html) {
                var holder = document.createElement("div");
                holder.innerHTML = html;
                var said = holder.querySelector(".error-message");
                var note = document.createElement("p");
                note.className = "notice error-message";
                note.textContent = said ? said.textContent : "the action was refused (" + r.status + ")";
                form.parentNode.appendChild(note);
              });
            }
            if (r.redirected && r.url.indexOf(window.location.pathname) < 0) { window.location = r.url; return; }
            var live = $("#live");
            var url = live ? live.getAttribute("data-fragment") : window.location.pathname + "/live";
            return refreshPart(url || window.location.pathname + "/live");
          });
      });
    });
  }

  // -- the log viewer -------------------------------------------------------------
  function logViewer() {
    var box = $("#log");
    if (!box) return;
    var lines = $("#lines");
    var search = $("#search");
    var counter = $("#counter");
    var prev = $("#prev"), next = $("#next");
    var follow = $("#follow");
    var current = -1;

    function hits() { return $all("mark.hit", lines); }
    function step(by) {
      var all = hits();
      if (!all.length) { counter.textContent = "0 matches"; return; }
      if (current >= 0 && all[current]) all[current].classList.remove("current");
      current = (current + by + all.length) % all.length;
      all[current].classList.add("current");
      all[current].scrollIntoView({ block: "center" });
      if (follow) follow.checked = false;
      counter.textContent = (current + 1) + "/" + all.length;
    }
    if (search && search.value) {
      prev.hidden = next.hidden = false;
      prev.addEventListener("click", function () { step(-1); });
      next.addEventListener("click", function () { step(1); });
      search.addEventListener("keydown", function (e) {
        if (e.key === "Enter" && e.shiftKey) { e.preventDefault(); step(-1); }
      });
      if (hits().length) step(1); else counter.textContent = "0 matches";
    }

    if (box.getAttribute("data-live") !== "yes") return;
    if (follow) follow.parentNode.hidden = false;
    var wanted = box.getAttribute("data-stream");
    var needle = search && search.value ? search.value.toLowerCase() : "";
    var url = box.getAttribute("data-log-events") + "?after=" + encodeURIComponent(box.getAttribute("data-after") || "0");
    var source = new EventSource(url);
    source.addEventListener("line", function (e) {
      var line = JSON.parse(e.data);
      bump("all");
      bump(line.stream);
      if (wanted && line.stream !== wanted) return;
      if (lines.querySelector('[data-seq="' + line.seq + '"]')) return;
      lines.appendChild(render(line, needle));
      lines.appendChild(document.createTextNode("\n"));
      if (follow && follow.checked) lines.scrollTop = lines.scrollHeight;
    });
    source.addEventListener("end", function () { source.close(); box.setAttribute("data-live", "ended"); });
  }

  function bump(tab) {
    var count = $("#tab-" + tab + " .count");
    if (count) count.textContent = String(parseInt(count.textContent, 10) + 1);
  }

  function render(line, needle) {
    var span = document.createElement("span");
    span.className = "line stream-" + line.stream + " level-" + line.level;
    span.setAttribute("data-seq", line.seq);
    function part(cls, text) {
      var s = document.createElement("span");
      s.className = cls;
      s.textContent = text;
      span.appendChild(s);
      span.appendChild(document.createTextNode(" "));
    }
    part("ln", String(line.seq));
    part("t", line.at);
    part("s", line.stream);
    if (line.item) part("i", "[" + line.item + "]");
    var text = line.message, lower = text.toLowerCase(), i = 0, j;
    while (needle && (j = lower.indexOf(needle, i)) >= 0) {
      span.appendChild(document.createTextNode(text.slice(i, j)));
      var m = document.createElement("mark");
      m.className = "hit";
      m.textContent = text.slice(j, j + needle.length);
      span.appendChild(m);
      i = j + needle.length;
    }
    span.appendChild(document.createTextNode(text.slice(i)));
    return span;
  }

  // -- the workflow graph: zoom, pan, recenter ------------------------------------
  function graph() {
    var svg = $("#graph");
    if (!svg) return;
    var w = parseFloat(svg.getAttribute("data-width")), h = parseFloat(svg.getAttribute("data-height"));
    var view = { x: 0, y: 0, w: w, h: h };
    function apply() { svg.setAttribute("viewBox", [view.x, view.y, view.w, view.h].join(" ")); }
    function zoom(f) {
      var cx = view.x + view.w / 2, cy = view.y + view.h / 2;
      view.w *= f; view.h *= f; view.x = cx - view.w / 2; view.y = cy - view.h / 2; apply();
    }
    $("#zoom-in").addEventListener("click", function () { zoom(0.8); });
    $("#zoom-out").addEventListener("click", function () { zoom(1.25); });
    $("#recenter").addEventListener("click", function () { view = { x: 0, y: 0, w: w, h: h }; apply(); });
    svg.addEventListener("wheel", function (e) { e.preventDefault(); zoom(e.deltaY < 0 ? 0.9 : 1.1); }, { passive: false });
    var drag = null;
    svg.addEventListener("mousedown", function (e) { drag = { x: e.clientX, y: e.clientY }; });
    window.addEventListener("mouseup", function () { drag = null; });
    window.addEventListener("mousemove", function (e) {
      if (!drag) return;
      var scale = view.w / svg.clientWidth;
      view.x -= (e.clientX - drag.x) * scale; view.y -= (e.clientY - drag.y) * scale;
      drag = { x: e.clientX, y: e.clientY }; apply();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    liveEvents();
    actionForms();
    logViewer();
    graph();
  });
})();
