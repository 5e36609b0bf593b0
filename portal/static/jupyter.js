// The "Open in Jupyter" progress page (templates/jupyter.html): starts the user's notebook
// server, follows its progress and opens the notebook. A file, not an inline script, so the
// portal's Content-Security-Policy (portal/csp.py) forbids every inline script; the page's data
// comes in a JSON block (#jupyter-context), which is not run.
(function () {
  const given = JSON.parse(document.getElementById("jupyter-context").textContent);
  const context = given.context;
  const csrf = given.csrf;
  const progress = document.getElementById("jupyter-progress");
  const problem = document.getElementById("jupyter-problem");
  const started = Date.now();
  const LIMIT_MS = 180000;
  const bar = document.getElementById("jupyter-progress-bar");
  let source = null;
  function fail(message) {
    document.getElementById("jupyter-error").textContent = message;
    problem.hidden = false;
  }
  function show(event) {
    if (typeof event.progress === "number") {
      bar.value = event.progress;
      document.getElementById("jupyter-percent").textContent = event.progress + " %";
    }
    if (event.message) progress.textContent = event.message;  // text, never HTML
  }
  // The hub's progress events, relayed by the portal (its hub token stays there); once the
  // server is ready, /status writes the notebook and gives its address. Polling if the stream fails.
  function follow() {
    if (!window.EventSource) return poll();
    source = new EventSource("/jupyter/progress?" + new URLSearchParams(context).toString());
    source.onmessage = function (message) {
      const event = JSON.parse(message.data);
      show(event);
      if (event.ready || event.failed) source.close();
      if (event.ready) poll();
      if (event.failed) fail(event.message);
    };
    source.onerror = function () { source.close(); poll(); };
  }
  async function poll() {
    const query = new URLSearchParams(context).toString();
    let answer;
    try {
      answer = await (await fetch("/jupyter/status?" + query, {credentials: "same-origin"})).json();
    } catch (e) { return fail("The portal cannot be reached; check your connection and retry."); }
    if (answer.error) return fail(answer.error);
    if (answer.ready) { progress.textContent = "Opening " + answer.path + " …"; window.location = answer.url; return; }
    const seconds = Math.round((Date.now() - started) / 1000);
    if (Date.now() - started > LIMIT_MS) return fail("Your notebook server is taking unusually long to start; retry, or ask an administrator to look at the hub's log.");
    progress.textContent = answer.message + " (" + seconds + " s) …";
    setTimeout(poll, 1000);
  }
  async function start() {
    problem.hidden = true;
    if (source) source.close();
    show({progress: 0, message: "Starting your notebook server …"});
    let response;
    try {
      response = await fetch("/jupyter/start", {method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrf}, body: JSON.stringify(context)});
    } catch (e) { return fail("The portal cannot be reached; check your connection and retry."); }
    const answer = await response.json();
    if (answer.error) return fail(answer.error);
    follow();
  }
  document.getElementById("jupyter-retry").addEventListener("click", start);
  start();
})();
