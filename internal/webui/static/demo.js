// Live demo: re-reads both sides every second and redraws the board when
// it changed. The board HTML is rendered (and escaped) by the server's
// html/template, the same template as the page itself.
(function () {
  "use strict";
  var board = document.getElementById("board");
  if (!board) { return; }
  var url = board.getAttribute("data-state");
  var last = null;
  var busy = false;
  function poll() {
    if (busy || document.hidden) { return; }
    busy = true;
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (r.status === 401) { window.location.assign("/ui/login?next=" + encodeURIComponent("/ui/demo")); return null; }
        return r.ok ? r.json() : null;
      })
      .then(function (s) {
        if (s && typeof s.board === "string" && s.board !== last) {
          if (last !== null) { board.innerHTML = s.board; }
          last = s.board;
          board.setAttribute("data-updated", new Date().toISOString());
        }
      })
      .catch(function () {})
      .then(function () { busy = false; });
  }
  // A submitted form shows it is on its way.
  board.addEventListener("submit", function (e) {
    var b = e.submitter;
    if (b) { b.classList.add("pending"); }
  });
  poll();
  setInterval(poll, 1000);
})();
