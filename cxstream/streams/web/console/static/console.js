// cxstream console: optional enhancements of server-rendered pages (they work without it).
// 1. Times in the browser's own time zone, unless the user has one set in the users file.
// 2. The inbox updates live from /console/events (server-sent events), for its view.
// 3. One box ticks every alert of the inbox's page for a bulk action.
(function () {
  "use strict";
  function localise(root) {
    if (document.body.dataset.zone) { return; }  // the server already used the user's zone
    var format = new Intl.DateTimeFormat(undefined, {dateStyle: "medium", timeStyle: "short"});
    root.querySelectorAll("time[datetime]").forEach(function (node) {
      var moment = new Date(node.getAttribute("datetime"));
      if (!isNaN(moment)) { node.textContent = format.format(moment); }
    });
  }
  function rowFrom(html) {
    var body = document.createElement("tbody");
    body.innerHTML = html;
    return body.firstElementChild;
  }
  function newest(body) {
    var since = "";
    Array.prototype.forEach.call(body.rows, function (row) {
      if (row.dataset.updated > since) { since = row.dataset.updated; }
    });
    return since;
  }
  function live(table) {
    var status = document.getElementById("live");
    var empty = document.getElementById("empty");
    var body = table.tBodies[0];
    var view = table.dataset.view ? table.dataset.view + "&" : "";  // filters and page
    var source = new EventSource("/console/events?" + view + "since=" +
                                 encodeURIComponent(newest(body)));
    function place(row) {
      localise(row);
      var old = document.getElementById(row.id);
      if (old) { old.replaceWith(row); } else { body.insertBefore(row, body.firstChild); }
      row.classList.add("fresh");
      empty.hidden = true;
    }
    source.addEventListener("ready", function (e) {
      var now = e.data ? e.data.split(" ") : [];  // what is in the inbox now
      Array.prototype.slice.call(body.rows).forEach(function (row) {
        if (now.indexOf(row.dataset.alertId) < 0) { row.remove(); }
      });
      empty.hidden = body.rows.length > 0;
      status.textContent = "Live.";
    });
    source.addEventListener("bye", function () {  // the stream ended: open the next one
      source.close();
      setTimeout(function () { live(table); }, 500);
    });
    source.addEventListener("alert", function (e) { place(rowFrom(e.data)); });
    source.addEventListener("changed", function (e) { place(rowFrom(e.data)); });
    source.addEventListener("gone", function (e) {
      var old = document.getElementById("alert-" + e.data);
      if (old) { old.remove(); }
      empty.hidden = body.rows.length > 0;
    });
    source.onerror = function () { status.textContent = "Reconnecting…"; };
  }
  document.addEventListener("DOMContentLoaded", function () {
    localise(document);
    var inbox = document.getElementById("inbox");
    if (inbox && window.EventSource) { live(inbox); }
    var all = document.getElementById("tick-all");  // tick every row of the page
    if (all && inbox) {
      all.addEventListener("change", function () {
        inbox.querySelectorAll("tbody input[name=alert_id]").forEach(function (box) {
          box.checked = all.checked;
        });
      });
    }
  });
})();
