// The Live page, shown when the server has --live (see app.js PAGES): the newest frame, each
// label's chance over the last seconds of the stream, the segments found, the labels to look
// for (changed while the stream runs), and the stream's state in words. Everything arrives by
// server-sent events (/api/live/events): a snapshot first, then windows, segments, label
// changes and a status twice a second. The browser reconnects a dropped stream by itself.
"use strict";

const LIVE = {
  es: null, run: 0, windows: [], segments: new Map(), labels: [], span: 60, status: null,
  connection: "connecting", lost: 0, frameShown: null, frameLoading: false, frameAt: 0,
  drawPending: false, dirty: false, retry: null,
};
const LIVE_SPANS = [30, 60, 120];
const LIVE_FRAME_EVERY = 500; // ms: the most often the frame is fetched again
const LIVE_PLOT = { w: 800, h: 240, left: 44, right: 10, top: 10, bottom: 24 };

function liveEl(tag, attrs, text) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function liveBuild(info) {
  const root = $("page-live");
  const frame = liveEl("figure", { id: "live-frame-box" });
  const img = liveEl("img", { id: "live-frame", alt: "the newest frame of the stream" });
  frame.append(img, liveEl("figcaption", { id: "live-frame-time", class: "muted" }));
  const span = liveEl("select", { id: "live-span" });
  for (const s of LIVE_SPANS) span.appendChild(liveEl("option", { value: s }, `${s} s`));
  const head = liveEl("h3", {}, "Each label\u2019s chance over the last ");
  head.appendChild(span);
  const table = liveEl("table", { id: "live-segments" });
  const tr = liveEl("tr");
  for (const h of ["label", "from", "to", "peak"]) tr.appendChild(liveEl("th", {}, h));
  table.append(liveEl("thead"), liveEl("tbody"));
  table.tHead.appendChild(tr);
  root.replaceChildren(
    liveEl("h2", {}, "Live: " + info.live.source),
    liveEl("p", { id: "live-state", role: "status", "aria-live": "polite" }, "connecting\u2026"),
    frame, head,
    liveEl("div", { id: "live-plot-box" }), liveEl("div", { id: "live-legend" }),
    liveEl("h3", {}, "What happened (segments)"),
    liveEl("p", { id: "live-segments-note", class: "muted" },
           `A label above ${Math.round(100 * info.live.threshold)} % for at least ` +
           `${info.live.min_duration} s; the newest first.`),
    table,
    liveEl("h3", {}, "What to look for"),
    liveEl("label", { for: "live-labels" }, "One label per line; the next window uses them"),
    liveEl("textarea", { id: "live-labels", rows: 4, spellcheck: "false" }),
    liveEl("button", { type: "button", id: "live-apply" }, "Use these labels"),
    liveEl("p", { id: "live-labels-status", class: "muted", role: "status" }),
  );
  const q = new URLSearchParams(location.search);
  const s = Number(q.get("span"));
  LIVE.span = LIVE_SPANS.includes(s) ? s : 60;
  span.value = String(LIVE.span);
  span.addEventListener("change", () => {
    LIVE.span = Number(span.value);
    liveDraw();
    history.replaceState(null, "", "?" + viewState().toString());
  });
  $("live-labels").value = info.live.labels.join("\n");
  $("live-labels").addEventListener("input", () => { LIVE.dirty = true; });
  $("live-apply").addEventListener("click", liveApply);
  img.addEventListener("load", () => { LIVE.frameLoading = false; });
  img.addEventListener("error", () => { LIVE.frameLoading = false; });
}

// -- the event stream ------------------------------------------------------------------------
function liveConnect() {
  if (LIVE.es) return;
  const es = new EventSource("/api/live/events");
  LIVE.es = es;
  const on = (name, fn) => es.addEventListener(name, (ev) => fn(JSON.parse(ev.data)));
  on("snapshot", liveSnapshot);
  on("window", liveWindow);
  on("segment", liveSegment);
  on("labels", liveLabels);
  on("status", liveStatus);
  on("source", (s) => { if (s.run === LIVE.run && LIVE.status) liveStatus({ ...LIVE.status, state: s.state, reason: s.reason }); });
  on("lost", (l) => { LIVE.lost += l.events; liveStateLine(); });
  es.onopen = () => { LIVE.connection = "open"; liveStateLine(); };
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) { // refused (too many viewers) or gone: try later
      LIVE.es = null;
      LIVE.connection = "closed";
      clearTimeout(LIVE.retry);
      LIVE.retry = setTimeout(liveConnect, 5000);
    } else {
      LIVE.connection = "reconnecting"; // the browser reconnects by itself
    }
    liveStateLine();
  };
}

function liveSnapshot(s) {
  LIVE.run = s.status.run;
  LIVE.windows = s.windows;
  LIVE.segments = new Map(s.segments.map((g) => [g.label + "|" + g.start, g]));
  LIVE.labels = s.labels;
  if (!LIVE.dirty) $("live-labels").value = s.labels.join("\n");
  liveStatus(s.status);
  liveDraw();
  liveDrawSegments();
}

function liveWindow(w) {
  if (w.run !== LIVE.run) return;
  LIVE.windows.push(w);
  const keep = w.end - Math.max(...LIVE_SPANS) - 10;
  while (LIVE.windows.length && LIVE.windows[0].end < keep) LIVE.windows.shift();
  liveDraw();
}

function liveSegment(g) {
  if (g.run !== LIVE.run) return;
  LIVE.segments.set(g.label + "|" + g.start, g);
  while (LIVE.segments.size > 200) LIVE.segments.delete(LIVE.segments.keys().next().value);
  liveDrawSegments();
}

function liveLabels(l) {
  LIVE.labels = l.labels;
  if (!LIVE.dirty) $("live-labels").value = l.labels.join("\n");
  $("live-labels-status").textContent = "Now looking for: " + l.labels.join(", ") +
    (l.from_window === null ? " (from when the stream plays again)" : ` (from window ${l.from_window})`);
  liveDraw();
}

function liveStatus(s) {
  if (s.run !== LIVE.run) return;
  LIVE.status = s;
  liveStateLine();
  const now = Date.now();
  if (s.frame !== null && s.frame !== LIVE.frameShown && !LIVE.frameLoading &&
      now - LIVE.frameAt >= LIVE_FRAME_EVERY && !$("page-live").hidden) {
    LIVE.frameLoading = true;
    LIVE.frameAt = now;
    LIVE.frameShown = s.frame;
    $("live-frame").src = "/api/live/frame.jpg?t=" + s.frame;
    $("live-frame").dataset.time = s.frame;
    $("live-frame-time").textContent = `at ${s.frame.toFixed(1)} s of the stream`;
  }
}

function liveStateLine() {
  const s = LIVE.status;
  const el = $("live-state");
  if (!el) return;
  let text = "Connecting to the server\u2026";
  if (LIVE.connection === "reconnecting") text = "Lost the connection to the server; reconnecting\u2026";
  else if (LIVE.connection === "closed") text = "The server does not answer (or has too many viewers); trying again in 5 s\u2026";
  else if (s) {
    const why = s.reason ? ` (${s.reason})` : "";
    const ms = s.latency_p50 === null ? "" : `, results ${Math.round(1000 * s.latency_p50)} ms after the frames (median)`;
    text = {
      connecting: "Connecting to the source\u2026",
      playing: `Playing: ${s.windows} windows looked at, ${s.skipped} skipped` +
               ` (the model was busy or the stream had a gap)${ms}; ${s.reconnects} reconnects.`,
      reconnecting: `The source dropped${why}; reconnecting\u2026 (${s.reconnects} reconnects so far)`,
      ended: `The stream ended after ${s.windows} windows.`,
      lost: `The source is lost${why}` +
            (s.retry_in === null ? "." : `; trying again in ${Math.ceil(s.retry_in)} s.`),
    }[s.state] || s.state;
  }
  if (LIVE.lost) text += ` ${LIVE.lost} updates were skipped (a slow connection).`;
  el.textContent = text;
  el.dataset.state = LIVE.connection === "open" && s ? s.state : LIVE.connection;
}

// -- drawing ---------------------------------------------------------------------------------
function liveDraw() {
  if (LIVE.drawPending) return;
  LIVE.drawPending = true;
  setTimeout(() => { LIVE.drawPending = false; liveDrawNow(); }, 200); // at most 5 a second
}

function liveDrawNow() {
  const P = LIVE_PLOT;
  const ws = LIVE.windows;
  const end = ws.length ? ws[ws.length - 1].end : LIVE.span;
  const start = end - LIVE.span;
  const iw = P.w - P.left - P.right, ih = P.h - P.top - P.bottom;
  const x = (t) => P.left + (iw * (t - start)) / LIVE.span;
  const y = (p) => P.top + ih * (1 - p);
  const svg = svgEl("svg", { id: "live-plot", viewBox: `0 0 ${P.w} ${P.h}`, role: "img",
                             "aria-label": "each label's chance over the last seconds",
                             "data-end": end });
  svg.appendChild(svgEl("rect", { class: "plot-area", x: P.left, y: P.top, width: iw, height: ih }));
  for (const p of [0, 0.5, 1]) {
    svg.appendChild(svgEl("line", { class: "grid", x1: P.left, x2: P.left + iw, y1: y(p), y2: y(p) }));
    svg.appendChild(svgEl("text", { class: "axis", x: P.left - 4, y: y(p) + 4, "text-anchor": "end" }, `${100 * p}%`));
  }
  for (let k = 0; k <= 4; k++) {
    const t = start + (LIVE.span * k) / 4;
    if (t < 0) continue;
    const anchor = k === 4 ? "end" : "middle"; // (the newest tick at the right edge)
    svg.appendChild(svgEl("text", { class: "axis", x: x(t), y: P.h - 6, "text-anchor": anchor },
                          `${t.toFixed(0)} s`));
  }
  const shown = ws.filter((w) => (w.start + w.end) / 2 >= start);
  LIVE.labels.forEach((label, li) => {
    const pts = [];
    for (const w of shown) {
      const k = w.labels.indexOf(label);
      if (k >= 0) pts.push(`${x((w.start + w.end) / 2).toFixed(1)},${y(w.probs[k]).toFixed(1)}`);
    }
    const line = svgEl("polyline", { class: "series", points: pts.join(" "), fill: "none",
                                     stroke: colour(li), "stroke-width": 2, "data-label": label,
                                     "data-points": pts.length });
    line.appendChild(svgEl("title", {}, label));
    svg.appendChild(line);
  });
  $("live-plot-box").replaceChildren(svg);
  const legend = $("live-legend");
  legend.replaceChildren();
  LIVE.labels.forEach((label, li) => {
    const item = liveEl("span", { class: "key", "data-label": label });
    const dot = svgEl("svg", { viewBox: "0 0 10 10", width: 12, height: 12 });
    dot.appendChild(svgEl("rect", { width: 10, height: 10, fill: colour(li) }));
    item.append(dot, document.createTextNode(" " + label));
    legend.appendChild(item);
  });
}

function liveDrawSegments() {
  const body = $("live-segments").tBodies[0];
  const rows = [...LIVE.segments.values()].reverse();
  body.replaceChildren(...rows.map((g) => {
    const tr = liveEl("tr", { class: g.open ? "segment open" : "segment", "data-label": g.label });
    tr.append(liveEl("td", {}, g.label), liveEl("td", {}, `${g.start.toFixed(1)} s`),
              // an open segment is reported when it begins: its end and peak are not known yet
              liveEl("td", {}, g.open ? "still going on" : `${g.end.toFixed(1)} s`),
              liveEl("td", {}, `${g.open ? "at least " : ""}${(100 * g.peak).toFixed(0)} %`));
    return tr;
  }));
  $("live-segments").hidden = rows.length === 0;
  $("live-segments-note").dataset.count = rows.length;
}

// -- the labels ------------------------------------------------------------------------------
async function liveApply() {
  const labels = parseLabels($("live-labels").value);
  const say = $("live-labels-status");
  if (labels.length === 0) {
    say.textContent = "Type at least one label.";
    return;
  }
  $("live-apply").disabled = true;
  try {
    const r = await fetch("/api/live/labels", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ labels: labels }),
    });
    const body = await answerOf(r);
    if (!r.ok) {
      say.textContent = "Not changed: " + (body.error || r.status);
      return;
    }
    LIVE.dirty = false;
    say.textContent = "Sent; the next window uses them.";
  } catch (e) {
    say.textContent = "The request failed: " + e;
  } finally {
    $("live-apply").disabled = false;
  }
}

PAGES.live = {
  init(info) { liveBuild(info); },
  show() { liveConnect(); liveDraw(); },
  state(q) { q.set("span", String(LIVE.span)); },
};
