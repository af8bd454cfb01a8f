// marketmeter's dashboard: the overview's live refresh and confirmations. No dependencies.
"use strict";

// Every two seconds while the tab is shown; a slow answer (a large ledger) spaces the next
// refresh out to five times its duration, so an open tab never keeps the server busy.
function nextRefresh(box, elapsed) {
  setTimeout(() => refreshLive(box), Math.max(2000, 5 * elapsed));
}

function refreshLive(box) {
  if (document.visibilityState === "hidden") {
    nextRefresh(box, 0);
    return;
  }
  const started = performance.now();
  fetch(box.dataset.live, { credentials: "same-origin", headers: { Accept: "text/html" } })
    .then((answer) => {
      if (!answer.ok || answer.redirected) {
        throw new Error("stopped");
      }
      return answer.text();
    })
    .then((html) => {
      box.innerHTML = html;
      box.dataset.refreshed = String(Number(box.dataset.refreshed || "0") + 1);
      nextRefresh(box, performance.now() - started);
    })
    .catch(() => {
      box.dataset.stale = "true";
    });
}

document.addEventListener("DOMContentLoaded", () => {
  const live = document.getElementById("live");
  if (live) {
    nextRefresh(live, 0);
  }
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) {
        event.preventDefault();
      }
    });
  }
});
