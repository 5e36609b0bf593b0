// The Register page: inline checks by the service (debounced dry runs), streamed uploads with
// progress (each file is the raw body of one XMLHttpRequest, never read into memory), then one
// registration step. Every message is shown next to the field it names.
(function () {
  "use strict";
  const form = document.getElementById("register-form");
  if (!form) return;
  const csrf = form.dataset.csrf;
  const touched = new Set();
  let timer = null;

  const byId = (id) => document.getElementById(id);
  const project = () => byId("register-project").value;
  const fileInputs = () => Array.from(form.querySelectorAll("input[type=file]"));

  function values() {
    const out = {};
    form.querySelectorAll("select[name], input[name]").forEach((el) => {
      if (el.name !== "csrf_token" && el.name !== "project") out[el.name] = el.value;
    });
    return out;
  }

  function showFields(fields, general, all) {
    form.querySelectorAll(".field-error").forEach((el) => {
      const name = el.id.replace("register-error-", "");
      if (all || touched.has(name) || name.startsWith("file")) el.textContent = "";
    });
    Object.entries(fields || {}).forEach(([name, messages]) => {
      const el = byId("register-error-" + name);
      if (el && (all || touched.has(name) || name.startsWith("file"))) el.textContent = messages.join(" ");
      else if (!el && all) general = (general || []).concat(messages);
    });
    const box = byId("register-general");
    box.hidden = !(general && general.length);
    box.textContent = (general || []).join(" ");
  }

  async function post(url, body) {
    const response = await fetch(url, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf}, body: JSON.stringify(body)});
    let answer = {};
    try { answer = await response.json(); } catch (e) { answer = {general: ["The portal answered " + response.status]}; }
    return {ok: response.ok, answer: answer};
  }

  async function check(all) {
    const {answer} = await post("/register/check", {project: project(), values: values()});
    showFields(answer.fields, answer.general, all);
    return Object.keys(answer.fields || {}).length === 0 && !(answer.general || []).length;
  }

  function filterChoices() {
    ["register-experiment", "register-sample"].forEach((id) => {
      const select = byId(id);
      Array.from(select.options).forEach((o) => { o.hidden = !!o.dataset.project && o.dataset.project !== project(); });
      if (select.selectedOptions[0] && select.selectedOptions[0].hidden) select.value = "";
    });
  }

  function scheduleCheck(event) {
    if (event.target.name) touched.add(event.target.name);
    clearTimeout(timer);
    timer = setTimeout(() => check(false), 400);
  }

  function upload(input) {
    const file = input.files[0];
    const fmt = input.dataset.format;
    const bar = byId("register-progress-" + fmt), text = byId("register-progress-text-" + fmt);
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      const query = new URLSearchParams({project: project(), file_name: file.name});
      xhr.open("POST", "/register/uploads?" + query);
      xhr.setRequestHeader("X-CSRFToken", csrf);
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      const md5 = byId("register-md5-" + fmt).value.trim().toLowerCase();
      if (md5) xhr.setRequestHeader("X-Expected-MD5", md5);
      xhr.upload.onprogress = (e) => {
        if (!e.lengthComputable) return;
        bar.value = e.loaded / e.total;
        text.textContent = Math.round(100 * e.loaded / e.total) + "% of " + e.total + " bytes";
      };
      xhr.onload = () => {
        let answer = {};
        try { answer = JSON.parse(xhr.responseText); } catch (e) { answer = {general: ["upload failed: " + xhr.status]}; }
        if (xhr.status === 201) { text.textContent = "received, MD5 " + answer.md5sum; resolve(answer); return; }
        const messages = Object.values(answer.fields || {}).flat().concat(answer.general || []);
        byId("register-error-file-" + fmt).textContent = messages.join(" ");
        reject(new Error(messages.join(" ")));
      };
      xhr.onerror = () => { byId("register-error-file-" + fmt).textContent = "the upload was interrupted; try again"; reject(new Error("interrupted")); };
      xhr.send(file);  // the File itself: the browser streams it from disk
    });
  }

  // Choosing the imzML sends it to /register/header (read as it streams, kept nowhere): the
  // measurement's empty fields take the values its header gives, marked for the technician to
  // check; a field already filled keeps its value, with the file's value said beside it.
  async function readHeader(input) {
    const file = input.files[0], error = byId("register-error-file-imzML"), box = byId("register-header-imzML");
    if (!file) return;
    box.textContent = "reading the imzML's header…";
    const query = new URLSearchParams({project: project(), file_name: file.name});
    const response = await fetch("/register/header?" + query, {method: "POST", credentials: "same-origin",
      headers: {"X-CSRFToken": csrf, "Content-Type": "application/octet-stream"}, body: file});
    let answer = {};
    try { answer = await response.json(); } catch (e) { answer = {general: ["The portal answered " + response.status]}; }
    box.textContent = response.ok ? answer.summary.concat(answer.notes).join(". ") : "";
    error.textContent = response.ok ? "" : Object.values(answer.fields || {}).flat().concat(answer.general || []).join(" ");
    if (response.ok) fill(answer.values);
  }

  function fill(fromFile) {
    Object.entries(fromFile).forEach(([name, value]) => {
      const field = form.elements[name], note = byId("register-from-file-" + name);
      if (!field || !note) return;
      if (!field.value) { field.value = value; touched.add(name); note.textContent = "From the imzML: check it."; }
      else note.textContent = field.value === value ? "" : "The imzML says " + value + ".";
    });
    check(false);
  }

  async function discard(ids) {
    for (const id of ids) {
      await fetch("/register/uploads/" + id + "/discard?" + new URLSearchParams({project: project()}),
        {method: "POST", credentials: "same-origin", headers: {"X-CSRFToken": csrf}});
    }
  }

  async function submit(event) {
    event.preventDefault();
    const button = byId("register-submit");
    button.disabled = true;
    try {
      const missing = fileInputs().filter((input) => !input.files.length);
      missing.forEach((input) => { byId("register-error-file-" + input.dataset.format).textContent = "choose the " + input.dataset.format + " file"; });
      if (!(await check(true)) || missing.length) return;
      const ids = [];
      try {
        for (const input of fileInputs()) ids.push((await upload(input)).upload_id);
      } catch (e) { await discard(ids); return; }
      const {ok, answer} = await post("/register/commit", {project: project(), values: values(), uploads: ids});
      if (!ok) { showFields(answer.fields, answer.general, true); return; }
      const done = byId("register-done");
      done.hidden = false;
      done.innerHTML = "";
      const link = document.createElement("a");
      link.href = answer.href; link.id = "register-done-link";
      link.textContent = "Registered " + answer.registered + ": open its page";
      done.appendChild(link);
    } finally {
      button.disabled = false;
    }
  }

  form.addEventListener("input", scheduleCheck);
  form.addEventListener("change", (event) => { if (event.target.type !== "file") scheduleCheck(event); });
  byId("register-project").addEventListener("change", filterChoices);
  form.addEventListener("submit", submit);
  byId("register-file-imzML").addEventListener("change", (event) => readHeader(event.target));
  filterChoices();
})();
