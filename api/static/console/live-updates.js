// Live updates of a referral list (api/console/live_updates.py): the server names each referral
// that changed (an id, nothing else) and this offers to refresh the list. Without JavaScript,
// or without EventSource, the list is simply as fresh as its last load.
(function () {
  "use strict";
  var region = document.getElementById("live-updates");
  if (!region || !window.EventSource) {
    return;
  }
  var changed = new Set();
  var source = new EventSource(region.getAttribute("data-source"));

  function say(text, withRefresh) {
    var line = document.createElement("p");
    line.className = "live-note";
    line.textContent = text;
    if (withRefresh) {
      var refresh = document.createElement("a");
      refresh.href = window.location.href;
      refresh.textContent = "Refresh";
      line.append(" — ", refresh);
    }
    region.replaceChildren(line);
  }

  source.addEventListener("ready", function () {
    region.setAttribute("data-live", "on");
  });
  source.addEventListener("changed", function (event) {
    changed.add(JSON.parse(event.data).referral);
    var count = changed.size;
    say(count + (count === 1 ? " new update" : " new updates"), true);
  });
  source.addEventListener("interrupted", function () {
    region.setAttribute("data-live", "off");
    if (changed.size === 0) {
      say("Live updates paused: this list may be out of date.", true);
    }
  });
  source.addEventListener("signed-out", function () {
    source.close();
    region.setAttribute("data-live", "off");
    say("You were signed out.", false);
  });
})();
