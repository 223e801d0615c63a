// Fak3Zer0 web page. Plain JavaScript, no libraries; talks to the REST API under /api/v1.
// Every string that comes from a file or the server is written with textContent, never as HTML.
"use strict";

(function () {
  const API = "/api/v1";
  const POLL_MS = 700;
  const HISTORY_PAGE = 10;
  const COLOURS = ["#1f5fbf", "#d55e00", "#7b3294", "#008080", "#b8860b", "#c51b7d"];
  const TOKEN_KEY = "fak3zer0-token";

  const $ = (id) => document.getElementById(id);
  const el = {
    tokenSection: $("token-section"), tokenForm: $("token-form"), tokenInput: $("token-input"),
    tokenError: $("token-error"),
    form: $("upload-form"), drop: $("drop-zone"), file: $("file-input"), chosen: $("file-chosen"),
    model: $("model-select"), frames: $("frames-input"), submit: $("submit-button"),
    uploadProgress: $("upload-progress"), analysisProgress: $("analysis-progress"), status: $("status"),
    result: $("result-section"), verdict: $("verdict"), factFile: $("fact-file"),
    factProbability: $("fact-probability"), factModel: $("fact-model"), factFrames: $("fact-frames"),
    factDate: $("fact-date"), chart: $("chart"), chartSummary: $("chart-summary"), legend: $("chart-legend"),
    chartTable: $("chart-table"), chartFigure: $("chart-figure"), faces: $("faces"), del: $("delete-button"),
    history: $("history"), historyEmpty: $("history-empty"), historyMore: $("history-more"),
  };

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY) || "",
    models: {},          // name -> model info
    file: null,
    busy: false,
    current: null,       // analysis shown in the result section
    pollTimer: null,
    historyOffset: 0,
    blobUrls: [],
  };

  // ------------------------------------------------------------------ API
  class AuthError extends Error {}

  function authHeaders() {
    return state.token ? { "Authorization": "Bearer " + state.token } : {};
  }

  async function api(method, path) {
    const res = await fetch(API + path, { method, headers: authHeaders(), cache: "no-store" });
    if (res.status === 401) { askToken(); throw new AuthError("this server needs an API token"); }
    if (!res.ok) throw new Error(await errorText(res));
    return res.status === 204 ? null : res.json();
  }

  async function errorText(res) {
    try {
      const body = await res.json();
      if (typeof body.detail === "string") return body.detail;
      if (Array.isArray(body.detail)) return body.detail.map((d) => d.msg).join("; ");
    } catch (e) { /* not JSON */ }
    return "HTTP " + res.status;
  }

  // ------------------------------------------------------------------ token
  function askToken(message) {
    el.tokenSection.hidden = false;
    el.tokenError.textContent = message || (state.token ? "That token was not accepted." : "");
    setStatus("Enter the server's API token to continue.");
    el.tokenInput.focus();
  }

  el.tokenForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.token = el.tokenInput.value.trim();
    sessionStorage.setItem(TOKEN_KEY, state.token);
    el.tokenError.textContent = "";
    start();
  });

  // ------------------------------------------------------------------ status helpers
  function setStatus(text, isError) {
    el.status.textContent = text;
    el.status.classList.toggle("error", !!isError);
  }

  function size(bytes) {
    return bytes < 1048576 ? Math.max(1, Math.round(bytes / 1024)) + " KB" : (bytes / 1048576).toFixed(1) + " MB";
  }

  function pct(p) { return p === null || p === undefined ? "–" : (100 * p).toFixed(1) + "%"; }

  function setProgress(bar, fraction) {
    const v = Math.round(100 * Math.max(0, Math.min(1, fraction)));
    bar.value = v;
    bar.textContent = v + "%";
  }

  function verdictWords(a) {
    const r = a.result;
    if (a.status === "queued") return ["Waiting in the queue…", ""];
    if (a.status === "running") return ["Analysing…", ""];
    if (a.status === "failed") return ["Could not analyse this file: " + (a.error || "unknown error"), "error"];
    if (!r) return ["No result", ""];
    switch (r.verdict) {
      case "fake": return ["Likely FAKE – signs of manipulation found", "fake"];
      case "real": return ["Likely REAL – no sign of manipulation found", "real"];
      case "no_face": return ["No face found – nothing to judge", "no_face"];
      default: return ["Could not analyse this file: " + (r.error || "error"), "error"];
    }
  }

  // ------------------------------------------------------------------ file choice + drag and drop
  function chooseFile(file) {
    state.file = file || null;
    el.chosen.textContent = file ? file.name + " (" + size(file.size) + ")" : "No file chosen.";
    el.submit.disabled = !file || state.busy;
  }

  el.file.addEventListener("change", () => chooseFile(el.file.files[0]));
  ["dragenter", "dragover"].forEach((t) => el.drop.addEventListener(t, (ev) => {
    ev.preventDefault();
    el.drop.classList.add("dragging");
  }));
  ["dragleave", "dragend"].forEach((t) => el.drop.addEventListener(t, () => el.drop.classList.remove("dragging")));
  el.drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    el.drop.classList.remove("dragging");
    const f = ev.dataTransfer && ev.dataTransfer.files && ev.dataTransfer.files[0];
    if (f) { chooseFile(f); el.submit.focus(); }
  });

  // ------------------------------------------------------------------ upload (XHR for upload progress)
  el.form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!state.file || state.busy) return;
    upload(state.file);
  });

  function upload(file) {
    state.busy = true;
    el.submit.disabled = true;
    stopPolling();
    setProgress(el.uploadProgress, 0);
    setProgress(el.analysisProgress, 0);
    setStatus("Uploading " + file.name + "…");
    const form = new FormData();
    form.append("file", file, file.name);
    if (el.model.value) form.append("model", el.model.value);
    if (el.frames.value) form.append("frames", el.frames.value);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", API + "/analyses");
    const h = authHeaders();
    Object.keys(h).forEach((k) => xhr.setRequestHeader(k, h[k]));
    let lastAnnounced = -1;
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      const f = e.loaded / e.total;
      setProgress(el.uploadProgress, f);
      const step = Math.floor(f * 4);  // announce at 25% steps only, not on every event
      if (step !== lastAnnounced && step < 4) { lastAnnounced = step; setStatus("Uploading… " + Math.round(f * 100) + "%"); }
    });
    xhr.addEventListener("load", () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (e) { /* ignore */ }
      if (xhr.status === 202 && body) {
        setProgress(el.uploadProgress, 1);
        setStatus("Uploaded. Waiting for the analysis to start…");
        poll(body.id);
        loadHistory(true);
        return;
      }
      finishBusy();
      if (xhr.status === 401) { askToken(); return; }
      let msg = body && body.detail ? (typeof body.detail === "string" ? body.detail : body.detail.map((d) => d.msg).join("; ")) : "HTTP " + xhr.status;
      if (xhr.status === 503) msg += " (retry after " + (xhr.getResponseHeader("Retry-After") || "a few") + " s)";
      setStatus("Upload refused: " + msg, true);
    });
    xhr.addEventListener("error", () => { finishBusy(); setStatus("Upload failed: the server could not be reached.", true); });
    xhr.send(form);
  }

  function finishBusy() {
    state.busy = false;
    el.submit.disabled = !state.file;
  }

  // ------------------------------------------------------------------ polling
  function stopPolling() {
    if (state.pollTimer) { clearTimeout(state.pollTimer); state.pollTimer = null; }
  }

  async function poll(id) {
    stopPolling();
    let a;
    try {
      a = await api("GET", "/analyses/" + encodeURIComponent(id));
    } catch (e) {
      finishBusy();
      if (!(e instanceof AuthError)) setStatus("Lost track of the analysis: " + e.message, true);
      return;
    }
    setProgress(el.analysisProgress, a.progress);
    if (a.status === "queued") {
      setStatus(a.queue_position ? "Queued: " + a.queue_position + " analysis(es) ahead." : "Queued: starting soon.");
    } else if (a.status === "running") {
      setStatus("Analysing… " + Math.round(a.progress * 100) + "%");
    }
    if (a.status === "done" || a.status === "failed") {
      finishBusy();
      setProgress(el.analysisProgress, 1);
      showAnalysis(a, true);
      const words = verdictWords(a)[0];
      setStatus(a.status === "done" ? "Analysis finished: " + words : words, a.status === "failed");
      loadHistory(true);
      return;
    }
    state.pollTimer = setTimeout(() => poll(id), POLL_MS);
  }

  // ------------------------------------------------------------------ result rendering
  function clearBlobs() {
    state.blobUrls.forEach((u) => URL.revokeObjectURL(u));
    state.blobUrls = [];
  }

  function showAnalysis(a, focus) {
    state.current = a;
    const [words, kind] = verdictWords(a);
    el.result.hidden = false;
    el.verdict.textContent = words;
    el.verdict.dataset.verdict = kind;
    const r = a.result;
    el.factFile.textContent = a.filename + " (" + size(a.size_bytes) + ")";
    el.factProbability.textContent = r ? pct(r.fake_probability) : "–";
    el.factModel.textContent = a.model + (a.model_version ? " (version " + a.model_version + ")" : "");
    el.factFrames.textContent = r ? String(r.frames_used) : "–";
    el.factDate.textContent = new Date(a.created_at).toLocaleString() + (r ? " · " + r.seconds.toFixed(1) + " s" : "");
    const faces = (r && r.faces) || [];
    el.chartFigure.hidden = faces.length === 0;
    drawChart(faces);
    renderTable(faces);
    renderFaces(a, faces);
    if (focus) el.result.focus();
  }

  function renderFaces(a, faces) {
    clearBlobs();
    el.faces.replaceChildren();
    if (!faces.length) {
      const li = document.createElement("li");
      li.textContent = a.status === "done" ? "No faces were found in the sampled frames." : "No faces to show.";
      el.faces.appendChild(li);
      return;
    }
    faces.forEach((face, i) => {
      const li = document.createElement("li");
      const fig = document.createElement("figure");
      const img = document.createElement("img");
      img.alt = "Face " + face.track_id + ": crop of its most suspicious frame beside the heat map";
      img.width = 448;
      img.height = 246;
      const cap = document.createElement("figcaption");
      const sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.background = COLOURS[i % COLOURS.length];
      cap.appendChild(sw);
      cap.appendChild(document.createTextNode(" Face " + face.track_id + " – fake probability " + pct(face.fake_probability)
        + " over " + face.frames.length + " frame(s)"));
      fig.appendChild(img);
      fig.appendChild(cap);
      li.appendChild(fig);
      el.faces.appendChild(li);
      if (face.heatmap) loadImage(img, face.heatmap);
      else img.alt = "No heat map for face " + face.track_id;
    });
  }

  // <img src> cannot send the token header, so heat maps are fetched and shown from blob URLs.
  async function loadImage(img, url) {
    if (!url.startsWith(API + "/")) return;  // only our own API
    try {
      const res = await fetch(url, { headers: authHeaders() });
      if (!res.ok) throw new Error("HTTP " + res.status);
      const u = URL.createObjectURL(await res.blob());
      state.blobUrls.push(u);
      img.src = u;
    } catch (e) {
      img.alt = "Heat map could not be loaded (" + e.message + ")";
    }
  }

  // ------------------------------------------------------------------ chart (canvas, drawn by hand)
  function drawChart(faces) {
    const canvas = el.chart;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(200, canvas.clientWidth || 600);
    const h = Math.max(120, canvas.clientHeight || 240);
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    el.legend.replaceChildren();
    if (!faces.length) { el.chartSummary.textContent = ""; return; }

    const pad = { l: 44, r: 14, t: 12, b: 34 };
    const times = faces.flatMap((f) => f.frames.map((p) => p.time_s));
    let t0 = Math.min(...times), t1 = Math.max(...times);
    if (t1 - t0 < 1e-6) { t0 -= 0.5; t1 += 0.5; }
    const x = (t) => pad.l + (t - t0) / (t1 - t0) * (w - pad.l - pad.r);
    const y = (p) => pad.t + (1 - p) * (h - pad.t - pad.b);

    // grid and axes
    ctx.font = "12px system-ui, sans-serif";
    ctx.fillStyle = "#555d66";
    ctx.strokeStyle = "#d9dde3";
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    [0, 0.25, 0.5, 0.75, 1].forEach((p) => {
      ctx.beginPath(); ctx.moveTo(pad.l, y(p)); ctx.lineTo(w - pad.r, y(p)); ctx.stroke();
      ctx.fillText(Math.round(p * 100) + "%", pad.l - 6, y(p));
    });
    ctx.textBaseline = "top";
    const ticks = w < 400 ? 3 : 5;
    for (let i = 0; i <= ticks; i++) {
      const t = t0 + (t1 - t0) * i / ticks;
      ctx.textAlign = i === 0 ? "left" : i === ticks ? "right" : "center";
      ctx.fillText(t.toFixed(t1 - t0 < 5 ? 1 : 0) + " s", x(t), h - pad.b + 6);
    }
    // decision threshold
    const model = state.models[state.current && state.current.model];
    const thr = model ? model.threshold : 0.5;
    ctx.save();
    ctx.setLineDash([6, 4]);
    ctx.strokeStyle = "#b3261e";
    ctx.beginPath(); ctx.moveTo(pad.l, y(thr)); ctx.lineTo(w - pad.r, y(thr)); ctx.stroke();
    ctx.restore();
    ctx.strokeStyle = "#8a929c";
    ctx.beginPath(); ctx.moveTo(pad.l, pad.t); ctx.lineTo(pad.l, h - pad.b); ctx.lineTo(w - pad.r, h - pad.b); ctx.stroke();

    // one line (and dots) per face
    faces.forEach((face, i) => {
      const colour = COLOURS[i % COLOURS.length];
      const pts = face.frames.slice().sort((a, b) => a.time_s - b.time_s);
      ctx.strokeStyle = colour;
      ctx.fillStyle = colour;
      ctx.lineWidth = 2.5;
      ctx.beginPath();
      pts.forEach((p, k) => (k ? ctx.lineTo(x(p.time_s), y(p.fake_probability)) : ctx.moveTo(x(p.time_s), y(p.fake_probability))));
      ctx.stroke();
      pts.forEach((p) => { ctx.beginPath(); ctx.arc(x(p.time_s), y(p.fake_probability), 3.5, 0, 2 * Math.PI); ctx.fill(); });
      const li = document.createElement("li");
      const sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.background = colour;
      li.appendChild(sw);
      li.appendChild(document.createTextNode("Face " + face.track_id));
      el.legend.appendChild(li);
    });
    const dash = document.createElement("li");
    dash.textContent = "dashed red line: decision threshold " + pct(thr);
    el.legend.appendChild(dash);

    el.chartSummary.textContent = faces.map((f) => {
      const ps = f.frames.map((p) => p.fake_probability);
      return "Face " + f.track_id + ": " + ps.length + " frame(s), fake probability from " + pct(Math.min(...ps))
        + " to " + pct(Math.max(...ps)) + ", overall " + pct(f.fake_probability) + ".";
    }).join(" ");
  }

  function renderTable(faces) {
    el.chartTable.replaceChildren();
    const head = el.chartTable.createTHead().insertRow();
    ["Face", "Frame", "Time (s)", "Fake probability"].forEach((t) => {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = t;
      head.appendChild(th);
    });
    const body = el.chartTable.createTBody();
    faces.forEach((f) => f.frames.forEach((p) => {
      const row = body.insertRow();
      [f.track_id, p.index, p.time_s.toFixed(2), pct(p.fake_probability)].forEach((v) => { row.insertCell().textContent = String(v); });
    }));
  }

  window.addEventListener("resize", () => {
    if (state.current && state.current.result && !el.result.hidden) drawChart(state.current.result.faces || []);
  });

  el.del.addEventListener("click", async () => {
    const a = state.current;
    if (!a || !window.confirm("Delete the analysis of " + a.filename + " and its files from the server?")) return;
    try {
      await api("DELETE", "/analyses/" + encodeURIComponent(a.id));
      stopPolling();
      el.result.hidden = true;
      state.current = null;
      clearBlobs();
      setStatus("Deleted the analysis of " + a.filename + ".");
      loadHistory(true);
      el.file.focus();
    } catch (e) {
      if (!(e instanceof AuthError)) setStatus("Could not delete: " + e.message, true);
    }
  });

  // ------------------------------------------------------------------ history
  async function loadHistory(reset) {
    if (reset) state.historyOffset = 0;
    let page;
    try {
      page = await api("GET", "/analyses?offset=" + state.historyOffset + "&limit=" + HISTORY_PAGE);
    } catch (e) {
      return;
    }
    if (reset) el.history.replaceChildren();
    page.items.forEach((a) => el.history.appendChild(historyItem(a)));
    state.historyOffset += page.items.length;
    el.historyEmpty.hidden = page.total > 0;
    el.historyMore.hidden = state.historyOffset >= page.total;
  }

  function historyItem(a) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    const name = document.createElement("span");
    name.className = "h-name";
    name.textContent = a.filename;
    const v = document.createElement("span");
    v.className = "h-verdict";
    const verdict = a.status === "done" ? a.verdict : a.status;
    v.dataset.verdict = verdict || "";
    v.textContent = (verdict || "").replace("_", " ") + (a.fake_probability !== null && a.fake_probability !== undefined ? " " + pct(a.fake_probability) : "");
    const meta = document.createElement("span");
    meta.className = "h-meta";
    meta.textContent = new Date(a.created_at).toLocaleString() + " · " + a.model;
    b.append(name, v, meta);
    b.setAttribute("aria-label", "Open the analysis of " + a.filename + ", " + v.textContent + ", " + meta.textContent);
    b.addEventListener("click", () => openAnalysis(a.id));
    li.appendChild(b);
    return li;
  }

  async function openAnalysis(id) {
    stopPolling();
    try {
      const a = await api("GET", "/analyses/" + encodeURIComponent(id));
      showAnalysis(a, true);
      if (a.status === "queued" || a.status === "running") { state.busy = false; poll(a.id); }
      else setStatus("Showing the analysis of " + a.filename + ".");
    } catch (e) {
      if (!(e instanceof AuthError)) setStatus("Could not open the analysis: " + e.message, true);
    }
  }

  el.historyMore.addEventListener("click", () => loadHistory(false));

  // ------------------------------------------------------------------ start
  async function start() {
    try {
      const m = await api("GET", "/models");
      el.tokenSection.hidden = true;
      el.model.replaceChildren();
      state.models = {};
      m.models.forEach((info) => {
        state.models[info.name] = info;
        const o = document.createElement("option");
        o.value = info.name;
        o.textContent = info.name + " (" + info.architecture + ")" + (info.default ? " – default" : "");
        o.selected = info.default;
        el.model.appendChild(o);
      });
      setStatus("Ready. Choose a file to analyse.");
      loadHistory(true);
    } catch (e) {
      if (!(e instanceof AuthError)) setStatus("The server is not answering: " + e.message, true);
    }
  }

  start();
})();
