// X-CLIP local page: one video, one set of labels, two views of it: "What is in it?" (ranked
// labels, the frames the model saw) and "What happens when?" (each label's chance over time,
// click to seek). Results download as JSON/CSV; the address bar holds the view, so a link
// reopens it. No external resources: charts are SVG built with DOM calls (the CSP forbids
// inline script and style).
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const COLOURS = ["#2a6fdb", "#e07b00", "#2e9e44", "#c9302c", "#8e44ad", "#00897b", "#b8860b",
                 "#d81b60", "#5d6d7e", "#6d4c41"];
const HELP = {
  classify: "Ranks your labels for the whole video and shows the frames the model looked at.",
  timeline: "Cuts the video into stretches and shows how well each label fits each stretch: " +
            "good for long videos where different things happen.",
};
let info = null;
let view = "classify";
let page = "label";
// The optional pages (search.js, live.js) register here: {init(info), show(), state(q)}; a
// page's tab shows when /api/info has its key (the server was started with its option).
const PAGES = {};
let last = null; // {view, result, video, picked}

function showError(msg) {
  $("error").textContent = msg;
  $("error").hidden = !msg;
}

function setStatus(msg) {
  $("status").textContent = msg;
}

function parseLabels(text) {
  const parts = text.includes("\n") ? text.split("\n") : text.split(",");
  return parts.map((s) => s.trim()).filter((s) => s.length > 0);
}

function mb(n) {
  return (n / 1048576).toFixed(0) + " MB";
}

// The JSON of an answer; an answer that is not JSON becomes an error the page can show.
async function answerOf(r) {
  try {
    return await r.json();
  } catch (e) {
    return { error: `the server answered ${r.status} without JSON` };
  }
}

function colour(i) {
  return COLOURS[i % COLOURS.length];
}

function svgEl(name, attrs, text) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function describeModel(i) {
  const views = i.views.clips * i.views.crops;
  const how = views > 1
    ? `, ${views} times over (${i.views.clips} stretch(es) \u00d7 ${i.views.crops} crop(s)) and averages them`
    : "";
  return `The model \u201c${i.model}\u201d looks at ${i.num_frames} frames spread evenly over the ` +
    `video (or over each stretch), each shrunk to ${i.image_size}\u00d7${i.image_size} pixels${how}. ` +
    `Uploads up to ${mb(i.max_upload_bytes)}.`;
}

// -- views -----------------------------------------------------------------------------------
function setView(v) {
  view = v === "timeline" ? "timeline" : "classify";
  for (const b of document.querySelectorAll("#views button")) {
    b.setAttribute("aria-selected", String(b.dataset.view === view));
  }
  $("timeline-settings").hidden = view !== "timeline";
  $("view-help").textContent = HELP[view];
  $("run").textContent = view === "timeline" ? "Draw the timeline" : "Label the video";
  $("results-classify").hidden = !(last && last.view === "classify" && view === "classify");
  $("results-timeline").hidden = !(last && last.view === "timeline" && view === "timeline");
  $("keep").hidden = !(last && last.view === view);
}

// -- the pages -------------------------------------------------------------------------------
function setPage(p) {
  page = p in PAGES && info && info[p] ? p : "label";
  for (const b of document.querySelectorAll("#pages button")) {
    b.setAttribute("aria-selected", String(b.dataset.page === page));
  }
  for (const el of document.querySelectorAll(".page")) el.hidden = el.id !== "page-" + page;
  if (page !== "label") PAGES[page].show();
  if (info) history.replaceState(null, "", "?" + viewState().toString());
}

// -- the address of a view -------------------------------------------------------------------
function viewState() {
  const q = new URLSearchParams();
  if (page !== "label") {
    q.set("page", page);
    PAGES[page].state(q);
    return q;
  }
  q.set("view", view);
  if ($("pick").value) q.set("video", $("pick").value);
  q.set("labels", parseLabels($("labels").value).join("\n"));
  q.set("template", $("template").value || "{}");
  if (view === "timeline") {
    q.set("window", $("window").value);
    q.set("stride", $("stride").value);
  }
  return q;
}

function restoreState() {
  const q = new URLSearchParams(location.search);
  if (q.has("labels")) $("labels").value = q.get("labels");
  if (q.has("template")) $("template").value = q.get("template");
  if (q.has("window")) $("window").value = q.get("window");
  if (q.has("stride")) $("stride").value = q.get("stride");
  setView(q.get("view") || "classify");
  const video = q.get("video");
  if (video && info.videos.includes(video)) {
    $("pick").value = video;
    showVideo();
    return true; // run it again
  }
  return false;
}

// -- the video -------------------------------------------------------------------------------
function showVideo() {
  const file = $("file").files[0];
  const v = $("preview");
  if (v.src && v.src.startsWith("blob:")) URL.revokeObjectURL(v.src);
  if (file) {
    v.src = URL.createObjectURL(file);
  } else if ($("pick").value) {
    v.src = "/api/videos/" + $("pick").value.split("/").map(encodeURIComponent).join("/");
  } else {
    v.removeAttribute("src");
    v.hidden = true;
    return;
  }
  v.hidden = false;
}

async function loadInfo() {
  try {
    const r = await fetch("/api/info");
    info = await r.json();
  } catch (e) {
    $("model-info").textContent = "cannot reach the server: " + e;
    return;
  }
  $("model-info").textContent = describeModel(info);
  $("labels").value = info.labels.join("\n");
  $("template").value = info.template;
  $("file-hint").textContent =
    `any video format (mp4, mkv, webm, avi, mov...), at most ${mb(info.max_upload_bytes)}`;
  const sel = $("pick");
  for (const v of info.videos) {
    const o = document.createElement("option");
    o.value = v;
    o.textContent = v;
    sel.appendChild(o);
  }
  $("pick-row").hidden = info.videos.length === 0;
  let pages = 0;
  for (const b of document.querySelectorAll("#pages button")) {
    const p = b.dataset.page;
    b.hidden = p !== "label" && !(p in PAGES && info[p]);
    if (!b.hidden && p !== "label") {
      PAGES[p].init(info);
      pages += 1;
    }
  }
  $("pages").hidden = pages === 0;
  const q = new URLSearchParams(location.search);
  if (q.get("page") && q.get("page") !== "label") {
    setPage(q.get("page"));
    return;
  }
  if (restoreState()) run();
}

// -- Classify --------------------------------------------------------------------------------
function drawFrames(frames) {
  const box = $("frames");
  box.replaceChildren();
  for (const f of frames) {
    const fig = document.createElement("figure");
    const img = document.createElement("img");
    img.src = f.image;
    img.alt = `frame ${f.index}`;
    const cap = document.createElement("figcaption");
    cap.textContent = f.time === null ? `#${f.index}` : `${f.time.toFixed(2)} s`;
    fig.append(img, cap);
    box.appendChild(fig);
  }
}

function drawChart(preds) {
  const rowH = 26, labelW = 260, barW = 420, pad = 6, valueW = 70;
  const width = labelW + barW + valueW, height = preds.length * rowH + pad;
  const svg = svgEl("svg", { id: "chart", viewBox: `0 0 ${width} ${height}`, role: "img",
                             "aria-label": "how well each label fits" });
  preds.forEach((p, i) => {
    const y = pad + i * rowH;
    const g = svgEl("g", { class: "row", "data-label": p.label, "data-prob": p.prob });
    const name = p.label.length > 38 ? p.label.slice(0, 37) + "\u2026" : p.label;
    g.appendChild(svgEl("text", { x: labelW - 8, y: y + 15, "text-anchor": "end" }, name));
    g.appendChild(svgEl("rect", { class: "track", x: labelW, y: y, width: barW, height: rowH - 8 }));
    g.appendChild(svgEl("rect", { class: i === 0 ? "bar best" : "bar", x: labelW, y: y,
                                  width: Math.max(1, p.prob * barW), height: rowH - 8 }));
    g.appendChild(svgEl("text", { x: labelW + barW + 6, y: y + 15 }, (100 * p.prob).toFixed(1) + " %"));
    g.appendChild(svgEl("title", {}, `${p.label}: ${(100 * p.prob).toFixed(2)} %`));
    svg.appendChild(g);
  });
  $("chart-box").replaceChildren(svg);
}

function showClassify(res) {
  $("result-name").textContent = res.video;
  drawFrames(res.frames);
  drawChart(res.predictions);
  const t = res.timings;
  const ms = (s) => (1000 * (s || 0)).toFixed(0) + " ms";
  $("timings").textContent =
    `reading the video ${ms(t.decode + t.preprocess)}, model ${ms(t.model)}` +
    (res.duration ? ` | the video lasts ${res.duration.toFixed(1)} s` : "");
  return `done: ${res.predictions[0].label} (${(100 * res.predictions[0].prob).toFixed(1)} %)`;
}

// -- Timeline --------------------------------------------------------------------------------
const PLOT = { w: 800, h: 260, left: 44, right: 10, top: 10, bottom: 24, band: 22 };

function drawTimeline(res) {
  const P = PLOT;
  const end = res.duration || res.windows[res.windows.length - 1].end || 1;
  const iw = P.w - P.left - P.right, ih = P.h - P.top - P.bottom;
  const x = (t) => P.left + (iw * t) / end;
  const y = (p) => P.top + ih * (1 - p);
  const height = P.h + P.band + 8;
  const svg = svgEl("svg", { id: "plot", viewBox: `0 0 ${P.w} ${height}`, role: "img",
                             "aria-label": "each label's chance over time; click to seek",
                             "data-duration": end });
  svg.appendChild(svgEl("rect", { class: "plot-area", x: P.left, y: P.top, width: iw, height: ih }));
  for (const p of [0, 0.5, 1]) {
    svg.appendChild(svgEl("line", { class: "grid", x1: P.left, x2: P.left + iw, y1: y(p), y2: y(p) }));
    svg.appendChild(svgEl("text", { class: "axis", x: P.left - 4, y: y(p) + 4, "text-anchor": "end" },
                          `${100 * p}%`));
  }
  const ticks = 6;
  for (let k = 0; k <= ticks; k++) {
    const t = (end * k) / ticks;
    svg.appendChild(svgEl("text", { class: "axis", x: x(t), y: P.h - 6, "text-anchor": "middle" },
                          `${t.toFixed(1)} s`));
  }
  res.labels.forEach((label, li) => {
    const pts = res.windows.map((w) => `${x((w.start + w.end) / 2).toFixed(1)},${y(w.probs[li]).toFixed(1)}`);
    const line = svgEl("polyline", { class: "series", points: pts.join(" "), fill: "none",
                                     stroke: colour(li), "stroke-width": 2, "data-label": label });
    line.appendChild(svgEl("title", {}, label));
    svg.appendChild(line);
  });
  const band = svgEl("g", { id: "band" });
  for (const w of res.windows) {
    const li = res.labels.indexOf(w.top);
    const r = svgEl("rect", { class: "stretch", x: x(w.start), y: P.h, height: P.band,
                              width: Math.max(1, x(w.end) - x(w.start)), fill: colour(li),
                              "data-top": w.top, "data-start": w.start });
    r.appendChild(svgEl("title", {}, `${w.start.toFixed(1)}\u2013${w.end.toFixed(1)} s: ${w.top}`));
    band.appendChild(r);
  }
  svg.appendChild(band);
  const cursor = svgEl("line", { id: "cursor", x1: P.left, x2: P.left, y1: P.top, y2: P.h + P.band,
                                 visibility: "hidden" });
  svg.appendChild(cursor);
  svg.addEventListener("click", (ev) => {
    const box = svg.getBoundingClientRect();
    const vx = ((ev.clientX - box.left) / box.width) * P.w;
    const t = Math.min(end, Math.max(0, ((vx - P.left) / iw) * end));
    seek(t);
  });
  $("plot-box").replaceChildren(svg);
  const legend = $("legend");
  legend.replaceChildren();
  res.labels.forEach((label, li) => {
    const item = document.createElement("span");
    item.className = "key";
    const dot = svgEl("svg", { viewBox: "0 0 10 10", width: 12, height: 12 });
    dot.appendChild(svgEl("rect", { width: 10, height: 10, fill: colour(li) }));
    item.append(dot, document.createTextNode(" " + label));
    legend.appendChild(item);
  });
}

function seek(t) {
  const v = $("preview");
  v.currentTime = t;
  const cursor = $("cursor");
  const P = PLOT;
  const end = Number($("plot").dataset.duration);
  const cx = P.left + ((P.w - P.left - P.right) * t) / end;
  cursor.setAttribute("x1", cx);
  cursor.setAttribute("x2", cx);
  cursor.setAttribute("visibility", "visible");
  cursor.dataset.time = t.toFixed(3);
  setStatus(`jumped to ${t.toFixed(1)} s`);
}

function showTimeline(res) {
  $("timeline-name").textContent = res.video;
  drawTimeline(res);
  $("timeline-info").textContent =
    `${res.windows.length} stretches of ${res.window} s, one every ${res.stride} s` +
    (res.duration ? ` over ${res.duration.toFixed(1)} s of video` : "");
  return `done: ${res.windows.length} stretches`;
}

// -- keeping a result ------------------------------------------------------------------------
function csvCell(v) {
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function toCsv(v, res) {
  const rows = v === "timeline"
    ? [["start_s", "end_s", "best_label", ...res.labels],
       ...res.windows.map((w) => [w.start, w.end, w.top, ...w.probs])]
    : [["label", "probability"], ...res.predictions.map((p) => [p.label, p.prob])];
  return rows.map((r) => r.map(csvCell).join(",")).join("\r\n") + "\r\n";
}

// the browser saves `text` as a file called `name` (the pages' downloads)
function saveText(name, text, type) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([text], { type: type }));
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

function download(kind) {
  if (!last) return;
  const base = (last.result.video.split("/").pop() || "video").replace(/\.[^.]*$/, "");
  const text = kind === "json" ? JSON.stringify(last.result, null, 1) : toCsv(last.view, last.result);
  saveText(`${base}.${last.view}.${kind}`, text, kind === "json" ? "application/json" : "text/csv");
}

function keep(v, res, picked) {
  last = { view: v, result: res, picked: picked };
  const q = viewState();
  const link = location.pathname + "?" + q.toString();
  history.replaceState(null, "", link);
  $("permalink").href = link;
  $("permalink-note").textContent = picked
    ? ""
    : "(an uploaded video is not kept by the server: the link restores the labels and settings; choose the file again)";
  $("keep").hidden = false;
}

// -- running ---------------------------------------------------------------------------------
async function run(ev) {
  if (ev) ev.preventDefault();
  showError("");
  const labels = parseLabels($("labels").value);
  if (labels.length === 0) {
    showError("Type at least one label (two or more to compare).");
    return;
  }
  const template = $("template").value || "{}";
  const file = $("file").files[0];
  const pick = $("pick").value;
  const v = view;
  const route = v === "timeline" ? "/api/timeline" : "/api/classify";
  const win = Number($("window").value), stride = Number($("stride").value);
  if (v === "timeline" && !(win > 0 && stride > 0)) {
    showError("The stretch length and the step must be positive numbers of seconds.");
    return;
  }
  let req;
  if (file) {
    if (info && file.size > info.max_upload_bytes) {
      showError(`${file.name} is ${mb(file.size)}; the server accepts at most ${mb(info.max_upload_bytes)}.`);
      return;
    }
    const q = new URLSearchParams({ template: template, name: file.name });
    for (const l of labels) q.append("label", l);
    if (v === "timeline") { q.set("window", win); q.set("stride", stride); }
    req = fetch(route + "?" + q.toString(), {
      method: "POST",
      headers: { "Content-Type": file.type || "application/octet-stream" },
      body: file,
    });
  } else if (pick) {
    const body = { video: pick, labels: labels, template: template };
    if (v === "timeline") { body.window = win; body.stride = stride; }
    req = fetch(route, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  } else {
    showError("Choose a video file to upload" + (info && info.videos.length ? " or pick one." : "."));
    return;
  }
  $("run").disabled = true;
  setStatus(v === "timeline" ? "drawing the timeline\u2026" : "labelling\u2026");
  try {
    const r = await req;
    const body = await answerOf(r);
    if (!r.ok) {
      showError(body.error || `error ${r.status}`);
      setStatus("");
      return;
    }
    const done = v === "timeline" ? showTimeline(body) : showClassify(body);
    keep(v, body, !file);
    setView(v);
    setStatus(done);
  } catch (e) {
    showError("The request failed: " + e);
    setStatus("");
  } finally {
    $("run").disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("form").addEventListener("submit", run);
  $("file").addEventListener("change", () => {
    if ($("file").files[0]) $("pick").value = "";
    showVideo();
  });
  $("pick").addEventListener("change", () => {
    if ($("pick").value) $("file").value = "";
    showVideo();
  });
  for (const b of document.querySelectorAll("#views button")) {
    b.addEventListener("click", () => setView(b.dataset.view));
  }
  for (const b of document.querySelectorAll("#pages button")) {
    b.addEventListener("click", () => setPage(b.dataset.page));
  }
  $("download-json").addEventListener("click", () => download("json"));
  $("download-csv").addEventListener("click", () => download("csv"));
  setView("classify");
  loadInfo();
});
