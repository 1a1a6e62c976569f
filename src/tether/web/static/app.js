// tether dashboard: keeps a page live through server-sent events. No build step, no dependencies.
// New events are added to the page's event list at once; the page's live regions ([data-fragment]) are
// fetched again from the server (at most once a second, and every few seconds for ages and heartbeats).
(function () {
  "use strict";
  var body = document.body;
  var url = body.getAttribute("data-stream");
  if (!url || !window.EventSource || !window.fetch) return;
  var regions = Array.prototype.slice.call(document.querySelectorAll("[data-fragment]"));
  var list = document.getElementById("events");
  var dot = document.getElementById("live");
  var agentPage = url.indexOf("agent=") >= 0;
  var timer = null, last = 0, MAXEVENTS = 100, MAXLOG = 1000;

  function busy(el) {  // never replace a region someone is typing in
    var a = document.activeElement;
    if (a && el.contains(a) && (a.tagName === "INPUT" || a.tagName === "TEXTAREA")) return true;
    var fields = el.querySelectorAll("input:not([type=hidden]), textarea");
    for (var i = 0; i < fields.length; i++) if (fields[i].value) return true;
    return false;
  }
  function refresh() {
    regions.forEach(function (el) {
      if (busy(el)) return;
      var sep = location.search ? "&" : "?";
      fetch(location.pathname + location.search + sep + "fragment=" + encodeURIComponent(el.getAttribute("data-fragment")),
            { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) {
          if (r.redirected || r.status === 401 || r.status === 303) { location.reload(); return null; }
          return r.ok ? r.text() : null;
        })
        .then(function (html) { if (html !== null && html !== undefined && !busy(el)) el.innerHTML = html; })
        .catch(function () {});
    });
  }
  function soon() {
    if (timer || !regions.length) return;
    var wait = Math.max(0, 1000 - (Date.now() - last));
    timer = setTimeout(function () { timer = null; last = Date.now(); refresh(); }, wait);
  }
  function clock(ts) {
    var d = new Date(ts * 1000);
    return d.toISOString().substr(11, 8);
  }
  function addEvent(e) {
    if (!list || list.querySelector('[data-event-id="' + e.id + '"]')) return;
    var li = document.createElement("li");
    li.setAttribute("data-event-id", String(e.id));
    li.setAttribute("data-seen", String(Date.now()));
    li.className = (e.tone || "") + " new";
    var t = document.createElement("time");
    t.textContent = clock(e.ts);
    li.appendChild(t);
    if (e.agent && !agentPage) {
      li.appendChild(document.createTextNode(" "));
      var a = document.createElement("a");
      a.href = "/agents/" + encodeURIComponent(e.agent);
      a.textContent = e.agent;
      li.appendChild(a);
    }
    var k = document.createElement("span");
    k.className = "kind";
    k.textContent = " " + e.kind + " ";
    li.appendChild(document.createTextNode(" "));
    li.appendChild(k);
    var x = document.createElement("span");
    x.className = "text";
    x.textContent = e.text;
    li.appendChild(x);
    list.insertBefore(li, list.firstChild);
    while (list.children.length > MAXEVENTS) list.removeChild(list.lastChild);
  }
  function addLog(lines) {
    lines.forEach(function (l) {
      var pre = document.getElementById("log-" + l.stream);
      if (!pre) return;
      var stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.appendChild(document.createTextNode(l.line + "\n"));
      while (pre.childNodes.length > MAXLOG) pre.removeChild(pre.firstChild);
      if (stick) pre.scrollTop = pre.scrollHeight;
    });
  }
  document.querySelectorAll("pre.log").forEach(function (pre) { pre.scrollTop = pre.scrollHeight; });

  var es = new EventSource(url);
  es.addEventListener("open", function () { if (dot) dot.className = "live on"; });
  es.addEventListener("error", function () { if (dot) dot.className = "live"; });
  es.addEventListener("tether", function (m) {
    try { addEvent(JSON.parse(m.data)); } catch (err) { return; }
    soon();
  });
  es.addEventListener("log", function (m) {
    try { addLog(JSON.parse(m.data)); } catch (err) { /* ignore a bad frame */ }
  });
  setInterval(function () { if (!document.hidden) soon(); }, 5000);
  window.addEventListener("pagehide", function () { es.close(); });
})();
