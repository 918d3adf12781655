// purse: small progressive enhancements. Every page works without this file.
"use strict";

// A quote's countdown: the server refuses an expired quote anyway; this only tells the user.
function tickCountdowns() {
  document.querySelectorAll("[data-expires-at]").forEach((element) => {
    const left = Math.max(0, Math.round((Date.parse(element.dataset.expiresAt) - Date.now()) / 1000));
    element.textContent = String(left);
    if (left === 0) element.closest("form")?.classList.add("expired");
  });
}
document.addEventListener("DOMContentLoaded", () => {
  tickCountdowns();
  setInterval(tickCountdowns, 1000);
  // Print buttons on receipts.
  document.querySelectorAll("[data-print]").forEach((button) => {
    button.addEventListener("click", () => window.print());
  });
});
