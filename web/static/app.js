// Progressive enhancement only: every page works without this file.
document.addEventListener("DOMContentLoaded", function () {
  // A form marked js-once is sent once: a second click while it is on its way does nothing.
  // (The server also makes a repeated referral submission return the first referral.)
  document.querySelectorAll("form.js-once").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.dataset.sent === "1") { event.preventDefault(); return; }
      form.dataset.sent = "1";
      form.querySelectorAll("button[type=submit]").forEach(function (b) { b.setAttribute("aria-disabled", "true"); });
    });
  });
  document.querySelectorAll("button.js-print").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }
});
