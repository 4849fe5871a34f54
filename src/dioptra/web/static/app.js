// The testbed's web interface. Every page reads and changes the testbed through the
// public API (the v0 routes and the documented extras) from the same origin; the session
// cookie of the login page (or no token at all on loopback) authorises those calls.
"use strict";

const root = document.getElementById("page");
const content = document.getElementById("content");
const STATUSES = ["queued", "deferred", "started", "finished", "failed"];
const POLL_MS = 2000;

// --- small helpers ---------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "html") el.innerHTML = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// replaceChildren that takes what h() takes: nested lists, and nothing for null/false.
function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false)
    .map((c) => (c instanceof Node ? c : document.createTextNode(String(c)))));
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, options = {}) {
  const answer = await fetch(path, { credentials: "same-origin", ...options });
  if (answer.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); throw new ApiError(401, "log in first"); }
  const type = answer.headers.get("content-type") || "";
  const body = type.includes("json") ? await answer.json() : await answer.text();
  if (!answer.ok) throw new ApiError(answer.status, (body && body.message) || String(body) || answer.statusText);
  return body;
}

const send = (path, method, json) => api(path, {
  method, headers: json === undefined ? {} : { "content-type": "application/json" },
  body: json === undefined ? undefined : JSON.stringify(json),
});

function notice(text, bad = false) {
  const el = document.getElementById("notice");
  el.textContent = text;
  el.className = bad ? "notice bad" : "notice";
  el.hidden = !text;
}

// Times are naive UTC on the wire; shown in the browser's zone.
function when(iso) {
  if (!iso) return "";
  const date = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : iso + "Z");
  return date.toLocaleString();
}
const timeCell = (iso) => h("td", {}, iso ? h("time", { datetime: iso }, when(iso)) : "");
const statusBadge = (status) => h("span", { class: `status status-${status}` }, status);
const jobLink = (id, text) => h("a", { href: `/jobs/${encodeURIComponent(id)}` }, text || id.slice(0, 8));
const params = () => new URLSearchParams(location.search);
const empty = (...children) => h("div", { class: "empty" }, ...children);

function table(headers, rows, attrs = {}) {
  return h("div", { class: "scroll" }, h("table", attrs,
    h("thead", {}, h("tr", {}, headers.map((x) => typeof x === "string" ? h("th", { scope: "col" }, x) : x))),
    h("tbody", {}, rows)));
}

function field(id, labelText, input, hint) {
  return h("div", { class: "field" }, h("label", { for: id }, labelText,
    hint ? h("span", { class: "hint" }, " ", hint) : null), input,
    h("p", { class: "error", id: `${id}-error`, role: "alert", hidden: true }));
}

function fieldError(id, message) {
  const el = document.getElementById(`${id}-error`);
  if (!el) return false;
  el.textContent = message || "";
  el.hidden = !message;
  return true;
}

let mlflowUi = null;
async function mlflowRunUrl(experimentId, runId) {
  if (mlflowUi === null) mlflowUi = (await api("/api/v0/overview/config")).mlflowUi.replace(/\/$/, "");
  // The Model training view (runs, metrics, artifacts), not MLflow 3's GenAI view.
  return `${mlflowUi}/#/experiments/${experimentId}/runs/${runId}?workflowType=machine_learning`;
}

function poll(fn, ms = POLL_MS) {
  let timer = null;
  const tick = async () => {
    try { if (await fn() === false) return; } catch (err) { notice(err.message, true); }
    timer = setTimeout(tick, ms);
  };
  tick();
  return () => clearTimeout(timer);
}

// --- experiments -----------------------------------------------------------------------

async function experimentsPage() {
  const list = h("div");
  const name = h("input", { id: "experiment-name", name: "name", required: true });
  const form = h("form", { class: "inline", onsubmit: async (e) => {
    e.preventDefault(); fieldError("experiment-name", "");
    try {
      await send("/api/v0/experiment/", "POST", { name: name.value });
      notice(`Experiment ${name.value} registered.`); name.value = ""; await render();
    } catch (err) { fieldError("experiment-name", err.message); }
  } }, field("experiment-name", "New experiment", name), h("button", { class: "primary", type: "submit" }, "Register experiment"));
  fill(content, form, list);

  async function render() {
    const rows = await api("/api/v0/overview/experiments");
    if (!rows.length) {
      fill(list, empty("No experiment yet: register one with the form above, then submit jobs to it."));
      return;
    }
    fill(list, table(["Name", "Id", "Jobs", "Last activity", ""], rows.map((x) => {
      const total = Object.values(x.jobs).reduce((a, b) => a + b, 0);
      const counts = STATUSES.filter((s) => x.jobs[s]).map((s) => `${x.jobs[s]} ${s}`).join(", ");
      const rename = h("button", { type: "button", onclick: async () => {
        const input = h("input", { value: x.name, "aria-label": `New name for ${x.name}` });
        const cell = rename.parentElement;
        fill(cell, h("form", { class: "inline", onsubmit: async (e) => {
          e.preventDefault();
          try { await send(`/api/v0/experiment/${x.experimentId}`, "PUT", { name: input.value }); notice("Renamed."); await render(); }
          catch (err) { notice(err.message, true); }
        } }, input, h("button", { type: "submit" }, "Save")));
        input.focus();
      } }, "Rename");
      const remove = h("button", { type: "button", class: "danger", onclick: async () => {
        const what = total ? ` and hide its ${total} job(s) from the list of experiments; its MLflow experiment is deleted too` : " (it has no jobs); its MLflow experiment is deleted too";
        if (!confirm(`Delete experiment ${x.name}${what}?`)) return;
        try { await send(`/api/v0/experiment/${x.experimentId}`, "DELETE"); notice(`Experiment ${x.name} deleted.`); await render(); }
        catch (err) { notice(err.message, true); }
      } }, "Delete");
      return h("tr", {}, h("td", {}, h("a", { href: `/jobs?experimentId=${x.experimentId}` }, x.name)),
        h("td", {}, x.experimentId), h("td", {}, total ? `${total}: ${counts}` : "none"),
        timeCell(x.lastActivity), h("td", {}, h("div", { class: "actions" }, rename, remove)));
    })));
  }
  await render();
}

// --- jobs --------------------------------------------------------------------------------

async function jobsPage() {
  const q = params();
  const [experiments, queues] = await Promise.all([api("/api/v0/experiment/"), api("/api/v0/overview/queues")]);
  const pick = (id, label, options, value) => field(id, label, h("select", { id, name: id },
    h("option", { value: "" }, "any"), options.map(([v, t]) => h("option", { value: v, selected: String(v) === value }, t))));
  const filters = h("form", { class: "inline", id: "job-filters" },
    pick("status", "Status", STATUSES.map((s) => [s, s]), q.get("status") || ""),
    pick("experimentId", "Experiment", experiments.map((e) => [e.experimentId, e.name]), q.get("experimentId") || ""),
    pick("queue", "Queue", queues.map((x) => [x.name, x.name]), q.get("queue") || ""),
    field("entryPoint", "Entry point", h("input", { id: "entryPoint", name: "entryPoint", value: q.get("entryPoint") || "", size: 10 })),
    field("text", "Text", h("input", { id: "text", name: "text", type: "search", value: q.get("text") || "" })),
    h("button", { type: "submit" }, "Filter"));
  let offset = Number(q.get("offset") || 0);
  const limit = 25;
  const list = h("div");
  const selected = new Set();
  const compare = h("button", { type: "button", onclick: () => { location.href = "/compare?jobs=" + [...selected].join(","); } }, "Compare selected");
  filters.addEventListener("submit", (e) => {
    e.preventDefault();
    const next = new URLSearchParams(new FormData(filters));
    for (const [k, v] of [...next]) if (!v) next.delete(k);
    history.replaceState(null, "", "?" + next.toString());
    offset = 0; refresh();
  });
  fill(content, filters, h("div", { class: "actions" }, h("a", { href: "/submit" }, "Submit a job"), compare), list);

  async function refresh() {
    const query = new URLSearchParams(location.search);
    for (const [k, v] of [...query]) if (!v || k === "offset") query.delete(k);
    query.set("limit", limit); query.set("offset", offset);
    const page = await api("/api/v0/overview/jobs?" + query.toString());
    if (!page.total) {
      fill(list, empty("No job matches. ", h("a", { href: "/submit" }, "Submit a job"), " or change the filters."));
      return;
    }
    const rows = page.jobs.map((j) => h("tr", { "data-job-id": j.jobId },
      h("td", {}, h("input", { type: "checkbox", "aria-label": `select job ${j.jobId}`, checked: selected.has(j.jobId),
        onchange: (e) => { if (e.target.checked) selected.add(j.jobId); else selected.delete(j.jobId); } })),
      h("td", {}, jobLink(j.jobId)), h("td", {}, statusBadge(j.status)), h("td", {}, j.experimentName),
      h("td", {}, j.entryPoint), h("td", { class: "hide-narrow" }, j.entryPointKwargs || ""),
      h("td", { class: "hide-narrow" }, j.queueName), timeCell(j.createdOn)));
    const pager = h("div", { class: "actions" },
      h("span", {}, `${page.offset + 1}–${page.offset + page.jobs.length} of ${page.total}`),
      h("button", { type: "button", disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - limit); refresh(); } }, "Newer"),
      h("button", { type: "button", disabled: offset + limit >= page.total, onclick: () => { offset += limit; refresh(); } }, "Older"));
    const heads = ["", "Job", "Status", "Experiment", "Entry point",
      h("th", { scope: "col", class: "hide-narrow" }, "Parameters"), h("th", { scope: "col", class: "hide-narrow" }, "Queue"), "Submitted"];
    fill(list, table(heads, rows, { id: "jobs-table" }), pager);
  }
  poll(refresh);  // live: the table follows the jobs without reloading the page
}

// --- one job -----------------------------------------------------------------------------

async function jobPage() {
  const jobId = root.dataset.jobId;
  const overview = h("div", { class: "card" });
  const actions = h("div", { class: "actions" });
  const logBox = h("pre", { class: "log", id: "log", tabindex: 0, "aria-label": "job log" });
  const metrics = h("div", { id: "metrics" });
  const artifacts = h("div", { class: "artifacts", id: "artifacts" });
  let logText = "";
  const download = h("button", { type: "button", onclick: () => {
    const a = h("a", { href: URL.createObjectURL(new Blob([logText], { type: "text/plain" })), download: `job-${jobId}.log` });
    a.click();
  } }, "Download log");
  fill(content, actions, h("div", { class: "grid" }, overview, h("div", {}, h("h2", {}, "Log"), download, logBox)),
    h("h2", {}, "Metrics"), metrics, h("h2", {}, "Artifacts"), artifacts);

  let job = null; let runShown = false; let offset = 0;
  async function refreshJob() {
    job = await api(`/api/v0/overview/jobs?jobId=${encodeURIComponent(jobId)}&limit=1`).then((p) => p.jobs.find((j) => j.jobId === jobId));
    if (!job) { fill(content, empty(`No job ${jobId}. `, h("a", { href: "/jobs" }, "All jobs"))); return false; }
    const children = await api(`/api/v0/overview/jobs?dependsOn=${encodeURIComponent(jobId)}&limit=100`);
    const kwargs = parseKwargs(job.entryPointKwargs);
    fill(overview, h("dl", { class: "kv" },
      h("dt", {}, "Status"), h("dd", { id: "job-status" }, statusBadge(job.status), job.reason ? h("span", { class: "muted" }, ` (${job.reason})`) : null),
      h("dt", {}, "Job id"), h("dd", {}, job.jobId),
      h("dt", {}, "Experiment"), h("dd", {}, h("a", { href: `/jobs?experimentId=${job.experimentId}` }, job.experimentName)),
      h("dt", {}, "Queue"), h("dd", {}, job.queueName),
      h("dt", {}, "Entry point"), h("dd", {}, job.entryPoint),
      h("dt", {}, "Submitted"), h("dd", {}, when(job.createdOn)),
      h("dt", {}, "Started"), h("dd", {}, when(job.startedOn) || "not yet"),
      h("dt", {}, "Ended"), h("dd", {}, when(job.endedOn) || "not yet"),
      h("dt", {}, "Timeout"), h("dd", {}, job.timeout || ""),
      h("dt", {}, "Depends on"), h("dd", {}, job.dependsOn ? jobLink(job.dependsOn, job.dependsOn) : "nothing"),
      h("dt", {}, "Children"), h("dd", {}, children.jobs.length ? children.jobs.map((c) => [jobLink(c.jobId), " "]) : "none"),
      h("dt", {}, "MLflow run"), h("dd", { id: "mlflow-run" }, job.mlflowRunId || "not yet")),
      Object.keys(kwargs).length ? [h("h2", {}, "Parameters"), table(["Name", "Value"], Object.entries(kwargs).map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", {}, v))))] : null);
    const running = job.status === "queued" || job.status === "started" || job.status === "deferred";
    fill(actions, 
      running ? h("button", { type: "button", class: "danger", id: "cancel-job", onclick: async () => {
        if (!confirm(`Cancel job ${jobId}?`)) return;
        try { await send(`/api/v0/job/${jobId}/cancel`, "POST"); notice("Cancel requested."); await refreshJob(); }
        catch (err) { notice(err.message, true); }
      } }, "Cancel job") : null,
      h("a", { href: `/submit?rerun=${encodeURIComponent(jobId)}` }, "Re-run (edit first)"),
      job.mlflowRunId ? h("a", { href: await mlflowRunUrl(job.experimentId, job.mlflowRunId), target: "_blank", rel: "noopener" }, "Open the run in MLflow") : null);
    if (job.mlflowRunId && (!running || !runShown)) await showRun();
    return running ? undefined : false;
  }

  async function refreshLog() {
    const part = await api(`/api/v0/job/${jobId}/log?offset=${offset}`);
    if (part.log) {
      logText += part.log; offset = part.nextOffset;
      const follow = logBox.scrollTop + logBox.clientHeight >= logBox.scrollHeight - 20;
      for (const line of part.log.split(/(?<=\n)/)) {
        const cls = /error|traceback|exception|failed/i.test(line) ? "errline" : /warn/i.test(line) ? "warnline" : null;
        logBox.append(cls ? h("span", { class: cls }, line) : document.createTextNode(line));
      }
      if (follow) logBox.scrollTop = logBox.scrollHeight;
    }
    if (!logText) logBox.textContent = "";
    const ended = part.status === "finished" || part.status === "failed";
    return ended && !part.log ? false : undefined;
  }

  async function showRun() {
    runShown = true;
    let run;
    try { run = await api(`/api/v0/job/${jobId}/run`); } catch (err) { fill(metrics, empty(err.message)); return; }
    const keys = Object.keys(run.metrics);
    if (!keys.length) fill(metrics, empty("No metric logged (yet)."));
    else {
      const charts = h("div", { class: "grid" });
      fill(metrics, table(["Metric", "Latest value"], keys.map((k) => h("tr", {}, h("td", {}, k), h("td", {}, fmt(run.metrics[k]))))), charts);
      for (const key of keys) {
        const history = await api(`/api/v0/job/${jobId}/metrics/${encodeURIComponent(key)}`);
        const box = h("div", { class: "chart", "data-metric": key, role: "img", "aria-label": `chart of ${key} over steps` });
        charts.append(box);
        window.Plotly.newPlot(box, [{ x: history.map((m) => m.step), y: history.map((m) => m.value), mode: "lines+markers", name: key }],
          { title: { text: key }, xaxis: { title: { text: "step" } }, margin: { t: 40, r: 10, b: 40, l: 50 }, height: 300 },
          { responsive: true, displaylogo: false });
      }
    }
    const lineage = Object.entries(run.tags).filter(([k]) => !k.startsWith("mlflow.") || k === "mlflow.source.name");
    if (lineage.length) overview.append(h("h2", {}, "Lineage"), table(["Tag", "Value"], lineage.map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", {}, v)))));
    // Drawn again when the job ends: folders the reader opened stay open.
    const opened = new Set([...artifacts.querySelectorAll("details[open]")].map((d) => d.dataset.path));
    fill(artifacts, await artifactTree("", opened));
  }

  async function artifactTree(path, opened = new Set()) {
    const entries = await api(`/api/v0/job/${jobId}/artifacts?path=${encodeURIComponent(path)}`);
    if (!entries.length && !path) return empty("No artifact.");
    const list = h("ul");
    for (const entry of entries) {
      const url = `/api/v0/job/${jobId}/artifact?path=${encodeURIComponent(entry.path)}`;
      const name = entry.path.split("/").pop();
      if (entry.isDir) {
        const details = h("details", { "data-path": entry.path }, h("summary", {}, name + "/"));
        details.addEventListener("toggle", async () => { if (details.open && details.children.length === 1) details.append(await artifactTree(entry.path, opened)); }, { once: false });
        if (opened.has(entry.path)) details.open = true;  // fires "toggle", which fills it
        list.append(h("li", {}, details));
      } else if (/\.(png|jpe?g|gif|svg|webp)$/i.test(name)) {
        list.append(h("li", {}, h("a", { href: url + "&download=true" }, name), h("br"), h("img", { src: url, alt: `artifact ${entry.path}`, loading: "lazy" })));
      } else {
        list.append(h("li", {}, h("a", { href: url + "&download=true" }, name), h("span", { class: "muted" }, ` ${entry.size ?? ""} bytes`)));
      }
    }
    return list;
  }

  poll(refreshJob, 3000);
  poll(refreshLog, 1500);
}

const fmt = (value) => (typeof value === "number" && !Number.isInteger(value) ? value.toPrecision(4) : String(value));

function parseKwargs(text) {
  const found = {};
  const re = /-P\s+([^=\s]+)=("([^"]*)"|'([^']*)'|\S+)/g;
  let m;
  while ((m = re.exec(text || ""))) found[m[1]] = m[3] ?? m[4] ?? m[2];
  return found;
}

// --- submit --------------------------------------------------------------------------------

async function submitPage() {
  const q = params();
  const [experiments, queues, recent] = await Promise.all([api("/api/v0/experiment/"), api("/api/v0/overview/queues"), api("/api/v0/overview/jobs?limit=100")]);
  if (!experiments.length || !queues.length) {
    fill(content, empty(!experiments.length ? "No experiment yet: " : "No queue yet: ",
      h("a", { href: !experiments.length ? "/" : "/queues" }, !experiments.length ? "register an experiment" : "register a queue"), " first."));
    return;
  }
  let rerun = null; let archive = null;
  if (q.get("rerun")) {
    rerun = recent.jobs.find((j) => j.jobId === q.get("rerun")) ||
      (await api(`/api/v0/overview/jobs?jobId=${encodeURIComponent(q.get("rerun"))}&limit=1`)).jobs[0];
  }
  const select = (id, options, value) => h("select", { id, name: id, required: true },
    options.map(([v, t]) => h("option", { value: v, selected: v === value }, t)));
  const experiment = select("experimentName", experiments.map((e) => [e.name, e.name]), rerun && rerun.experimentName);
  const queue = select("queue", queues.map((x) => [x.name, x.locked ? `${x.name} (locked)` : x.name]), rerun && rerun.queueName);
  const file = h("input", { id: "workflow", name: "workflow", type: "file", accept: ".tar,.gz,.tgz,.bz2,.xz,.zip", required: !rerun });
  const entry = h("select", { id: "entryPoint", name: "entryPoint", required: true, disabled: true }, h("option", { value: "" }, "choose an archive first"));
  const paramBox = h("div", { id: "parameters" });
  const dependsOn = h("select", { id: "dependsOn", name: "dependsOn" }, h("option", { value: "" }, "nothing"),
    recent.jobs.map((j) => h("option", { value: j.jobId, selected: rerun && rerun.dependsOn === j.jobId }, `${j.jobId.slice(0, 8)} ${j.entryPoint} (${j.status})`)));
  const timeout = h("input", { id: "timeout", name: "timeout", value: (rerun && rerun.timeout) || "24h", pattern: "\\d+[dhms]?", size: 8 });
  let project = null;

  async function loadArchive(blob, name) {
    fieldError("workflow", "");
    const form = new FormData(); form.append("workflow", blob, name);
    try { project = await api("/api/v0/workflow/entryPoints", { method: "POST", body: form }); }
    catch (err) { fieldError("workflow", err.message); entry.disabled = true; return; }
    archive = { blob, name };
    fill(entry, ...project.entryPoints.map((ep) => h("option", { value: ep.name, selected: rerun && rerun.entryPoint === ep.name }, ep.name)));
    entry.disabled = false;
    showParams();
  }
  function showParams() {
    const ep = project && project.entryPoints.find((x) => x.name === entry.value);
    const given = rerun && rerun.entryPoint === entry.value ? parseKwargs(rerun.entryPointKwargs) : {};
    fill(paramBox, !ep || !ep.parameters.length ? h("p", { class: "muted" }, "This entry point takes no parameters.") : h("fieldset", {}, h("legend", {}, `Parameters of ${ep.name}`),
      ep.parameters.map((p) => field(`param-${p.name}`, p.name, h("input", {
        id: `param-${p.name}`, "data-param": p.name, "data-type": p.type, required: p.required,
        value: given[p.name] ?? p.default ?? "", inputmode: p.type === "float" ? "decimal" : null,
      }), `(${p.type}${p.required ? ", required" : ""})`))));
  }
  file.addEventListener("change", () => { if (file.files[0]) loadArchive(file.files[0], file.files[0].name); });
  entry.addEventListener("change", showParams);

  const form = h("form", { id: "submit-form", novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    for (const el of form.querySelectorAll(".error")) { el.hidden = true; }
    if (!archive) { fieldError("workflow", "Choose a workflow archive (tar or zip with an MLproject)."); return; }
    const kwargs = []; let bad = false;
    for (const input of paramBox.querySelectorAll("input[data-param]")) {
      const name = input.dataset.param; const value = input.value.trim(); const type = input.dataset.type;
      if (!value) { if (input.required) { fieldError(input.id, `${name} is required.`); bad = true; } continue; }
      if (type === "float" && !Number.isFinite(Number(value))) { fieldError(input.id, `${name} must be a number.`); bad = true; }
      if (type === "int" && !/^[+-]?\d+$/.test(value)) { fieldError(input.id, `${name} must be a whole number.`); bad = true; }
      kwargs.push(`-P ${name}=${/\s/.test(value) ? `"${value}"` : value}`);
    }
    if (!/^\d+[dhms]?$/.test(timeout.value.trim())) { fieldError("timeout", "Write a duration such as 30m, 1h or 2d."); bad = true; }
    if (bad) return;
    const body = new FormData();
    body.append("experimentName", experiment.value); body.append("queue", queue.value);
    body.append("entryPoint", entry.value); body.append("entryPointKwargs", kwargs.join(" "));
    if (dependsOn.value) body.append("dependsOn", dependsOn.value);
    body.append("timeout", timeout.value.trim());
    body.append("workflow", archive.blob, archive.name);
    try {
      const job = await api("/api/v0/job/", { method: "POST", body });
      location.href = `/jobs/${job.jobId}`;
    } catch (err) {
      // The API names the field it refuses: show the message beside it.
      const m = err.message;
      const target = /queue/i.test(m) ? "queue" : /experiment/i.test(m) ? "experimentName" : /timeout/i.test(m) ? "timeout"
        : /depend/i.test(m) ? "dependsOn" : /entry point/i.test(m) && !/parameter/i.test(m) ? "entryPoint"
        : ([...paramBox.querySelectorAll("input[data-param]")].find((i) => m.includes(`'${i.dataset.param}'`)) || {}).id || "workflow";
      if (!fieldError(target, m)) notice(m, true);
    }
  } },
  field("experimentName", "Experiment", experiment), field("queue", "Queue", queue),
  field("workflow", "Workflow archive", file, rerun ? "(the job's own archive is used unless you choose another)" : "(tar or zip with an MLproject)"),
  field("entryPoint", "Entry point", entry), paramBox,
  field("dependsOn", "Run after job", dependsOn, "(optional)"), field("timeout", "Timeout", timeout, "(e.g. 30m, 1h, 2d)"),
  h("button", { type: "submit", class: "primary" }, "Submit job"));
  fill(content, rerun ? h("p", {}, "Re-running job ", jobLink(rerun.jobId, rerun.jobId), ": change what you need.") : "", form);
  if (rerun) {
    const answer = await fetch(`/api/v0/job/${rerun.jobId}/workflow`, { credentials: "same-origin" });
    if (answer.ok) await loadArchive(await answer.blob(), "workflow.tar.gz");
  }
}

// --- queues --------------------------------------------------------------------------------

async function queuesPage() {
  const list = h("div");
  const name = h("input", { id: "queue-name", name: "name", required: true });
  const form = h("form", { class: "inline", onsubmit: async (e) => {
    e.preventDefault(); fieldError("queue-name", "");
    try { await send("/api/v0/queue/", "POST", { name: name.value }); notice(`Queue ${name.value} registered.`); name.value = ""; await render(); }
    catch (err) { fieldError("queue-name", err.message); }
  } }, field("queue-name", "New queue", name), h("button", { type: "submit", class: "primary" }, "Register queue"));
  fill(content, form, list);
  async function render() {
    const rows = await api("/api/v0/overview/queues");
    if (!rows.length) { fill(list, empty("No queue yet: register one with the form above (jobs are submitted to a queue).")); return; }
    fill(list, table(["Queue", "State", "Queued", "Running", "Workers", ""], rows.map((x) => h("tr", { "data-queue": x.name },
      h("td", {}, x.name), h("td", {}, x.locked ? h("span", { class: "warn" }, "locked (refuses new jobs)") : "open"),
      h("td", {}, x.queued), h("td", {}, x.running),
      h("td", {}, x.workers.length ? x.workers.join(", ") : x.served ? "embedded workers" : h("span", { class: "warn" }, "⚠ no live worker serves this queue: its jobs wait")),
      h("td", {}, h("div", { class: "actions" },
        h("button", { type: "button", onclick: async () => {
          try { await send(`/api/v0/queue/${x.queueId}/lock`, x.locked ? "DELETE" : "PUT"); notice(`Queue ${x.name} ${x.locked ? "unlocked" : "locked"}.`); await render(); }
          catch (err) { notice(err.message, true); }
        } }, x.locked ? "Unlock" : "Lock"),
        h("button", { type: "button", class: "danger", onclick: async () => {
          if (!confirm(`Delete queue ${x.name}?${x.queued + x.running ? ` It has ${x.queued} queued and ${x.running} running job(s).` : ""}`)) return;
          try { await send(`/api/v0/queue/${x.queueId}`, "DELETE"); notice(`Queue ${x.name} deleted.`); await render(); }
          catch (err) { notice(err.message, true); }
        } }, "Delete")))))));
  }
  poll(render, 5000);
}

// --- task plugins ------------------------------------------------------------------------

async function pluginsPage() {
  const list = h("div");
  const viewer = h("div", { id: "plugin-source" });
  const name = h("input", { id: "plugin-name", name: "taskPluginName", required: true, pattern: "[A-Za-z_][A-Za-z0-9_]*" });
  const file = h("input", { id: "plugin-file", name: "taskPluginFile", type: "file", required: true, accept: ".tar,.gz,.tgz,.zip" });
  const form = h("form", { class: "inline", id: "plugin-upload", onsubmit: async (e) => {
    e.preventDefault(); fieldError("plugin-name", ""); fieldError("plugin-file", "");
    const body = new FormData(); body.append("taskPluginName", name.value); body.append("collection", "dioptra_custom");
    if (file.files[0]) body.append("taskPluginFile", file.files[0]);
    try { await api("/api/v0/taskPlugin/", { method: "POST", body }); notice(`Plugin ${name.value} uploaded.`); name.value = ""; file.value = ""; await render(); }
    catch (err) { fieldError(/taskPluginFile|archive|file/i.test(err.message) ? "plugin-file" : "plugin-name", err.message); }
  } }, field("plugin-name", "Package name", name), field("plugin-file", "Package archive", file, "(tar or zip)"),
  h("button", { type: "submit", class: "primary" }, "Upload plugin"));
  fill(content, h("h2", {}, "Upload a package to dioptra_custom"), form, list, viewer);

  async function show(plugin, module) {
    const src = await api(`/api/v0/taskPlugin/${plugin.collection}/${plugin.taskPluginName}/source?module=${encodeURIComponent(module)}`);
    fill(viewer, h("h2", {}, `${plugin.collection}.${plugin.taskPluginName} / ${module}`),
      h("p", {}, src.functions.length ? `Registers: ${src.functions.join(", ")}` : "Registers no task plugin function."),
      h("div", { html: src.html }));
    viewer.scrollIntoView({ block: "nearest" });
  }
  async function render() {
    const plugins = await api("/api/v0/taskPlugin/");
    const custom = plugins.filter((p) => p.collection === "dioptra_custom");
    fill(list, 
      ["dioptra_builtins", "dioptra_custom"].map((collection) => [h("h2", {}, collection),
        collection === "dioptra_custom" && !custom.length ? empty("No custom package yet: upload one with the form above.") :
        table(["Package", "Modules", ""], plugins.filter((p) => p.collection === collection).map((p) => h("tr", { "data-plugin": p.taskPluginName },
          h("td", {}, p.taskPluginName),
          h("td", {}, h("div", { class: "tabs" }, p.modules.map((m) => h("button", { type: "button", onclick: () => show(p, m) }, m)))),
          h("td", {}, collection === "dioptra_custom" ? h("button", { type: "button", class: "danger", onclick: async () => {
            if (!confirm(`Delete plugin package ${p.taskPluginName}? Jobs that import it will fail.`)) return;
            try { await send(`/api/v0/taskPlugin/dioptra_custom/${p.taskPluginName}`, "DELETE"); notice(`Plugin ${p.taskPluginName} deleted.`); await render(); }
            catch (err) { notice(err.message, true); }
          } }, "Delete") : "builtin")))) ]));
  }
  await render();
}

// --- workers -------------------------------------------------------------------------------

async function workersPage() {
  poll(async () => {
    const rows = await api("/api/v0/overview/workers");
    fill(content, !rows.length ? empty("No live worker. Start one with `dioptra worker --server ", location.origin, " --queue NAME`, or run the server with embedded workers.") :
      table(["Worker", "Host", "Queues", "Running", "Last heard from"], rows.map((w) => h("tr", {},
        h("td", {}, w.workerId), h("td", {}, w.hostname), h("td", {}, w.queues ? w.queues.join(", ") : "every queue"),
        h("td", {}, w.running.length ? w.running.map((id) => [jobLink(id), " "]) : "idle"), timeCell(w.lastSeen)))));
  }, 5000);
}

// --- compare -------------------------------------------------------------------------------

async function comparePage() {
  const ids = (params().get("jobs") || "").split(",").filter(Boolean);
  if (ids.length < 2) {
    fill(content, empty("Select two or more jobs in the ", h("a", { href: "/jobs" }, "jobs table"), " and press “Compare selected”."));
    return;
  }
  const runs = await Promise.all(ids.map(async (id) => {
    try { return { id, run: await api(`/api/v0/job/${id}/run`) }; } catch (err) { return { id, run: null, error: err.message }; }
  }));
  const keysOf = (kind) => [...new Set(runs.flatMap((r) => (r.run ? Object.keys(r.run[kind]) : [])))].sort();
  const paramKeys = keysOf("params"); const metricKeys = keysOf("metrics");
  const header = () => ["", ...runs.map((r) => h("th", { scope: "col" }, jobLink(r.id)))];
  const rowsOf = (kind, keys) => keys.map((k) => h("tr", {}, h("th", { scope: "row" }, k), runs.map((r) => h("td", {}, r.run && k in r.run[kind] ? fmt(r.run[kind][k]) : "—"))));
  const metric = h("select", { id: "compare-metric" }, metricKeys.map((k) => h("option", { value: k }, k)));
  const param = h("select", { id: "compare-param" }, paramKeys.map((k) => h("option", { value: k }, k)));
  const chart = h("div", { class: "chart", id: "compare-chart", role: "img", "aria-label": "chart of the metric against the parameter" });
  fill(content, 
    runs.some((r) => !r.run) ? h("p", { class: "warn" }, runs.filter((r) => !r.run).map((r) => `${r.id.slice(0, 8)}: ${r.error}`).join("; ")) : "",
    h("h2", {}, "Parameters"), table(header(), rowsOf("params", paramKeys), { id: "compare-params" }),
    h("h2", {}, "Final metrics"), table(header(), rowsOf("metrics", metricKeys), { id: "compare-metrics" }),
    h("h2", {}, "Chart"), h("form", { class: "inline" }, field("compare-metric", "Metric", metric), field("compare-param", "against parameter", param)), chart);
  const draw = () => {
    const points = runs.filter((r) => r.run && metric.value in r.run.metrics && param.value in r.run.params)
      .map((r) => ({ x: r.run.params[param.value], y: r.run.metrics[metric.value], id: r.id.slice(0, 8) }));
    const numeric = points.every((p) => Number.isFinite(Number(p.x)));
    points.sort((a, b) => (numeric ? Number(a.x) - Number(b.x) : String(a.x).localeCompare(String(b.x))));
    window.Plotly.newPlot(chart, [{ x: points.map((p) => (numeric ? Number(p.x) : p.x)), y: points.map((p) => p.y), text: points.map((p) => p.id), mode: "lines+markers", type: "scatter" }],
      { xaxis: { title: { text: param.value } }, yaxis: { title: { text: metric.value } }, margin: { t: 20, r: 10, b: 50, l: 60 }, height: 340 },
      { responsive: true, displaylogo: false });
  };
  metric.addEventListener("change", draw); param.addEventListener("change", draw);
  if (metricKeys.length && paramKeys.length) draw();
}

// --- pipelines -------------------------------------------------------------------------------

async function pipelinesPage() {
  poll(async () => {
    const rows = await api("/api/v0/pipeline/");
    fill(content, !rows.length ? empty("No pipeline yet. Run one from a terminal: ",
      h("code", {}, `dioptra pipeline run PIPELINE.yaml --workflow ARCHIVE.tar.gz --address ${location.origin}`)) :
      table(["Pipeline", "Name", "Status", "Experiment", "Submitted"], rows.map((p) => h("tr", { "data-pipeline-id": p.pipelineId },
        h("td", {}, h("a", { href: `/pipelines/${encodeURIComponent(p.pipelineId)}` }, p.pipelineId.slice(0, 8))),
        h("td", {}, p.name), h("td", {}, statusBadge(p.status)),
        h("td", {}, h("a", { href: `/jobs?experimentId=${p.experimentId}` }, p.experimentId)), timeCell(p.createdOn))),
      { id: "pipelines-table" }));
  }, 5000);
}

const countsText = (counts) => STATUSES.filter((s) => counts[s]).map((s) => `${counts[s]} ${s}`).join(", ") || "no job";

// The stages as a layered graph: a stage's layer is one more than its deepest parent's.
function stageGraph(stages) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = (tag, attrs, text) => {
    const el = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    return el;
  };
  const parentsOf = (s) => (s.after ? [s.after] : s.afterAll || []);
  const layer = {};
  const depth = (s, seen = new Set()) => {
    if (s.name in layer) return layer[s.name];
    if (seen.has(s.name)) return 0;  // the server refuses cycles; never loop here
    seen.add(s.name);
    const parents = parentsOf(s).map((n) => stages.find((x) => x.name === n)).filter(Boolean);
    return (layer[s.name] = parents.length ? 1 + Math.max(...parents.map((p) => depth(p, seen))) : 0);
  };
  stages.forEach((s) => depth(s));
  const W = 210, H = 78, GX = 70, GY = 22, PAD = 16;
  const rowIn = {}; const place = {};
  for (const s of stages) {
    const l = layer[s.name]; const r = rowIn[l] = (rowIn[l] ?? -1) + 1;
    place[s.name] = { x: PAD + l * (W + GX), y: PAD + r * (H + GY) };
  }
  const width = PAD * 2 + (Math.max(...Object.values(layer)) + 1) * (W + GX) - GX;
  const height = PAD * 2 + (Math.max(...Object.values(rowIn)) + 1) * (H + GY) - GY;
  const graph = svg("svg", { class: "stage-graph", id: "stage-graph", viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-label": "the pipeline's stages and the jobs of each by status" });
  const defs = svg("defs", {});
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" });
  marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#5b6470" }));
  defs.append(marker); graph.append(defs);
  for (const s of stages) {
    for (const parent of parentsOf(s)) {
      const a = place[parent]; const b = place[s.name];
      if (!a) continue;
      const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, mid = (x1 + x2) / 2;
      const edge = svg("path", { class: s.after ? "edge" : "edge all", d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`, "marker-end": "url(#arrow)" });
      edge.append(svg("title", {}, s.after ? `${s.name} runs once per job of ${parent}` : `${s.name} runs once after all jobs of ${parent}`));
      graph.append(edge);
    }
  }
  for (const s of stages) {
    const { x, y } = place[s.name]; const c = s.counts;
    const ended = (c.finished || 0) + (c.failed || 0);
    const state = c.failed ? "bad" : s.total && ended === s.total ? "done" : c.started ? "busy" : "";
    const g = svg("g", { class: "stage", "data-stage": s.name });
    g.append(svg("rect", { class: `box ${state}`, x, y, width: W, height: H, rx: 6 }),
      svg("text", { class: "name", x: x + 10, y: y + 20 }, `${s.name} (${s.total} job${s.total === 1 ? "" : "s"})`),
      svg("text", { class: "small", x: x + 10, y: y + 38 }, s.entryPoints.join(", ") + (s.after ? " · per job" : s.afterAll.length ? " · after all" : "")),
      svg("text", { class: "counts", x: x + 10, y: y + 60 }, countsText(c)));
    graph.append(g);
  }
  return graph;
}

async function pipelinePage() {
  const id = root.dataset.pipelineId;
  const overview = h("div", { class: "card" });
  const actions = h("div", { class: "actions" });
  const graphBox = h("div", { class: "scroll" });
  const counts = h("div");
  const jobs = h("div");
  const report = h("div", { id: "report" });
  const base = `/api/v0/pipeline/${encodeURIComponent(id)}`;
  fill(content, actions, overview, h("h2", {}, "Stages"), graphBox, counts, h("h2", {}, "Report"),
    h("p", { class: "actions" }, h("a", { href: `${base}/report.html`, target: "_blank", rel: "noopener" }, "HTML report (with charts)"),
      h("a", { href: `${base}/report` }, "JSON"), h("a", { href: `${base}/report.csv` }, "CSV")),
    report, h("h2", {}, "Jobs"), jobs);
  let reportShown = false;

  async function showReport(final) {
    const r = await api(`${base}/report`);
    const params = r.columns.params; const metrics = r.columns.metrics;
    if (final) report.dataset.final = "true";  // complete: it changes no more
    fill(report, r.warnings.length ? h("ul", { class: "warn" }, r.warnings.map((w) => h("li", {}, w))) : null,
      !final ? h("p", { class: "muted" }, "So far: the report is complete when the pipeline ends.") : null,
      r.rows.length ? table(["Stage", "Job", "Status", ...params, ...metrics], r.rows.map((row) => h("tr", {},
        h("td", {}, row.stage), h("td", {}, jobLink(row.jobId)), h("td", {}, statusBadge(row.status)),
        params.map((p) => h("td", {}, row.params[p] ?? "")), metrics.map((m) => h("td", {}, m in row.metrics ? fmt(row.metrics[m]) : "")))),
      { id: "report-table" }) : empty("No run has metrics yet."),
      final && r.charts.length ? [h("h2", {}, "The full report, with its charts"),
        // The server's self-contained report draws the charts (SVG): shown as it is.
        h("iframe", { class: "report", id: "report-frame", src: `${base}/report.html`, title: "the pipeline's HTML report with its charts" })] : null);
  }

  async function refresh() {
    let p;
    try { p = await api(base); } catch (err) {
      if (err.status === 404) { fill(content, empty(`No pipeline ${id}. `, h("a", { href: "/pipelines" }, "All pipelines"))); return false; }
      throw err;
    }
    const running = p.status !== "finished" && p.status !== "failed";
    document.querySelector("h1").textContent = `Pipeline ${p.name}`;
    fill(overview, h("dl", { class: "kv" },
      h("dt", {}, "Status"), h("dd", { id: "pipeline-status" }, statusBadge(p.status), p.reason ? h("span", { class: "muted" }, ` (${p.reason})`) : null),
      h("dt", {}, "Pipeline id"), h("dd", {}, p.pipelineId),
      h("dt", {}, "Experiment"), h("dd", {}, h("a", { href: `/jobs?experimentId=${p.experimentId}` }, p.experimentId)),
      h("dt", {}, "Submitted"), h("dd", {}, when(p.createdOn)),
      h("dt", {}, "Ended"), h("dd", {}, when(p.endedOn) || "not yet"),
      h("dt", {}, "MLflow run"), h("dd", {}, p.mlflowRunId || "not yet")));
    fill(actions, running ? h("button", { type: "button", class: "danger", id: "cancel-pipeline", onclick: async () => {
      if (!confirm(`Cancel pipeline ${p.name} and its unfinished jobs?`)) return;
      try { await send(`${base}/cancel`, "POST"); notice("Cancel requested."); await refresh(); }
      catch (err) { notice(err.message, true); }
    } }, "Cancel pipeline") : null,
      p.mlflowRunId ? h("a", { href: await mlflowRunUrl(p.experimentId, p.mlflowRunId), target: "_blank", rel: "noopener" }, "Open the run in MLflow") : null);
    fill(graphBox, stageGraph(p.stages));
    fill(counts, table(["Stage", "Jobs", ...STATUSES], p.stages.map((s) => h("tr", { "data-stage": s.name },
      h("th", { scope: "row" }, s.name), h("td", {}, s.total), STATUSES.map((st) => h("td", {}, s.counts[st] || 0)))), { id: "stage-counts" }));
    fill(jobs, table(["Job", "Stage", "Status", "Entry point", "Grid point"], p.jobs.map((j) => h("tr", { "data-job-id": j.jobId },
      h("td", {}, jobLink(j.jobId)), h("td", {}, j.stage), h("td", {}, statusBadge(j.status)), h("td", {}, j.entryPoint),
      h("td", {}, Object.entries(j.varying || {}).map(([k, v]) => `${k}=${v}`).join(" "))))));
    if (!running || !reportShown) { await showReport(!running); reportShown = true; }
    return running ? undefined : false;
  }
  poll(refresh);
}

// --- start -----------------------------------------------------------------------------------

const PAGES = { experiments: experimentsPage, jobs: jobsPage, job: jobPage, submit: submitPage,
  queues: queuesPage, plugins: pluginsPage, workers: workersPage, compare: comparePage,
  pipelines: pipelinesPage, pipeline: pipelinePage };
PAGES[root.dataset.page]().catch((err) => { notice(err.message, true); fill(content); });
