// A Copy button for text shown once (a new API token): <button data-copy="ID"> copies the text of
// the element with that id. A file, not an inline script, so a Content-Security-Policy that forbids
// inline scripts does not break it. Without the Clipboard API (plain http), the text is selected
// and copied the old way; failing that, left selected for the person to copy.
(function () {
  "use strict";
  function select(element) {
    const range = document.createRange();
    range.selectNodeContents(element);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  function copied(button, words) {
    const status = document.getElementById(button.dataset.copy + "-status");
    if (status) status.textContent = words;
  }
  async function copy(button) {
    const element = document.getElementById(button.dataset.copy);
    const text = element.textContent.trim();
    try {
      await navigator.clipboard.writeText(text);
      return copied(button, "Copied.");
    } catch (e) {
      select(element);
      copied(button, document.execCommand && document.execCommand("copy") ? "Copied." : "Selected: press Ctrl+C to copy.");
    }
  }
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.hidden = false;  // shown only where this script runs
    button.addEventListener("click", function () { copy(button); });
  });
})();
