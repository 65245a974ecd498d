// berth web UI: copy buttons. Loaded as a file (the Content-Security-Policy
// allows no inline script). Everything works without it but copying.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button.copy[data-copy]").forEach(function (b) {
    b.hidden = false;
    b.addEventListener("click", function () {
      var text = b.getAttribute("data-copy");
      var done = function () {
        b.textContent = "Copied";
        b.setAttribute("data-copied", "true");
        setTimeout(function () { b.textContent = "Copy"; }, 2000);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () { fallback(text) && done(); });
      } else if (fallback(text)) {
        done();
      }
    });
  });
  // Delete forms ask in a dialog; confirmed, the server deletes at once.
  // Without this script the server shows a confirmation page instead.
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (window.confirm(f.getAttribute("data-confirm"))) {
        f.elements.confirmed.value = "yes";
      } else {
        e.preventDefault();
      }
    });
  });
});
function fallback(text) {
  var t = document.createElement("textarea");
  t.value = text;
  t.setAttribute("readonly", "");
  t.className = "offscreen";
  document.body.appendChild(t);
  t.select();
  var ok = false;
  try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
  document.body.removeChild(t);
  return ok;
}
