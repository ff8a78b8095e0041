// Countdowns on the "busy, retrying" screen: [data-countdown="27"] ticks down to 0.
// A static file, not inline script, so the CSP can forbid inline code.
(function () {
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      if (!el.dataset.deadline) {
        el.dataset.deadline = String(now + Number(el.dataset.countdown) * 1000);
      }
      var left = Math.max(0, Math.ceil((Number(el.dataset.deadline) - now) / 1000));
      el.textContent = String(left);
    });
  }
  setInterval(tick, 500);
  // "Back in a moment" pages ([data-reload-after="5"]) reload themselves once it has passed.
  document.querySelectorAll("[data-reload-after]").forEach(function (el) {
    setTimeout(function () { window.location.reload(); }, Number(el.dataset.reloadAfter) * 1000);
  });
})();
