// marketmeter's dashboard: the overview's live refresh and confirmations. No dependencies.
"use strict";

function refreshLive(box) {
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
      setTimeout(() => refreshLive(box), 2000);
    })
    .catch(() => {
      box.dataset.stale = "true";
    });
}

document.addEventListener("DOMContentLoaded", () => {
  const live = document.getElementById("live");
  if (live) {
    setTimeout(() => refreshLive(live), 2000);
  }
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) {
        event.preventDefault();
      }
    });
  }
});
