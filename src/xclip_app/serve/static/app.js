// X-CLIP local page: upload or pick a video, type labels, show sampled frames and a bar chart.
// No external resources: the chart is inline SVG built with DOM calls (the CSP forbids inline
// script and style).
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
let info = null;

function showError(msg) {
  const box = $("error");
  box.textContent = msg;
  box.hidden = !msg;
}

function setStatus(msg) {
  $("status").textContent = msg;
}

function parseLabels(text) {
  const parts = text.includes("\n") ? text.split("\n") : text.split(",");
  return parts.map((s) => s.trim()).filter((s) => s.length > 0);
}

function mib(n) {
  return (n / 1048576).toFixed(1) + " MiB";
}

async function loadInfo() {
  try {
    const r = await fetch("/api/info");
    info = await r.json();
  } catch (e) {
    $("model-info").textContent = "cannot reach the server: " + e;
    return;
  }
  $("model-info").textContent =
    `model ${info.model}: ${info.num_frames} frames at ${info.image_size}px, ` +
    `${info.views.clips}x${info.views.crops} view(s); uploads up to ${mib(info.max_upload_bytes)}`;
  $("labels").value = info.labels.join("\n");
  $("template").value = info.template;
  $("file-hint").textContent = `any format FFmpeg reads (mp4, mkv, webm, avi, mov...), at most ${mib(info.max_upload_bytes)}`;
  if (info.videos.length) {
    const sel = $("pick");
    for (const v of info.videos) {
      const o = document.createElement("option");
      o.value = v;
      o.textContent = v;
      sel.appendChild(o);
    }
    $("pick-row").hidden = false;
  }
}

function drawFrames(frames) {
  const box = $("frames");
  box.replaceChildren();
  for (const f of frames) {
    const fig = document.createElement("figure");
    const img = document.createElement("img");
    img.src = f.image;
    img.alt = `frame ${f.index}`;
    const cap = document.createElement("figcaption");
    cap.textContent = f.time === null ? `#${f.index}` : `#${f.index} (${f.time.toFixed(2)} s)`;
    fig.append(img, cap);
    box.appendChild(fig);
  }
}

function svgEl(name, attrs, text) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function drawChart(preds) {
  const rowH = 26, labelW = 260, barW = 420, pad = 6, valueW = 70;
  const width = labelW + barW + valueW, height = preds.length * rowH + pad;
  const svg = svgEl("svg", { id: "chart", viewBox: `0 0 ${width} ${height}`, role: "img",
                             "aria-label": "probability per label" });
  preds.forEach((p, i) => {
    const y = pad + i * rowH;
    const g = svgEl("g", { class: "row", "data-label": p.label, "data-prob": p.prob });
    const name = p.label.length > 38 ? p.label.slice(0, 37) + "\u2026" : p.label;
    g.appendChild(svgEl("text", { x: labelW - 8, y: y + 15, "text-anchor": "end" }, name));
    g.appendChild(svgEl("rect", { class: "track", x: labelW, y: y, width: barW, height: rowH - 8 }));
    g.appendChild(svgEl("rect", { class: i === 0 ? "bar best" : "bar", x: labelW, y: y,
                                  width: Math.max(1, p.prob * barW), height: rowH - 8 }));
    g.appendChild(svgEl("text", { x: labelW + barW + 6, y: y + 15 }, (100 * p.prob).toFixed(1) + " %"));
    const title = svgEl("title", {}, `${p.label}: ${(100 * p.prob).toFixed(2)} %`);
    g.appendChild(title);
    svg.appendChild(g);
  });
  $("chart-box").replaceChildren(svg);
}

function showResult(res) {
  $("result-name").textContent = res.video;
  drawFrames(res.frames);
  drawChart(res.predictions);
  const t = res.timings;
  const ms = (s) => (1000 * (s || 0)).toFixed(0) + " ms";
  $("timings").textContent =
    `decode ${ms(t.decode)}, preprocess ${ms(t.preprocess)}, model ${ms(t.model)}, total ${ms(t.total)}` +
    (res.video_frames ? ` | ${res.video_frames} frames in the video` : "");
  $("results").hidden = false;
}

async function classify(ev) {
  ev.preventDefault();
  showError("");
  const labels = parseLabels($("labels").value);
  if (labels.length === 0) {
    showError("Type at least one label (two or more to compare).");
    return;
  }
  const template = $("template").value || "{}";
  const file = $("file").files[0];
  const pick = $("pick").value;
  let req;
  if (file) {
    if (info && file.size > info.max_upload_bytes) {
      showError(`${file.name} is ${mib(file.size)}; the server accepts at most ${mib(info.max_upload_bytes)}.`);
      return;
    }
    const q = new URLSearchParams({ template: template, name: file.name });
    for (const l of labels) q.append("label", l);
    req = fetch("/api/classify?" + q.toString(), {
      method: "POST",
      headers: { "Content-Type": file.type || "application/octet-stream" },
      body: file,
    });
  } else if (pick) {
    req = fetch("/api/classify", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ video: pick, labels: labels, template: template }),
    });
  } else {
    showError("Choose a video file to upload" + (info && info.videos.length ? " or pick one." : "."));
    return;
  }
  $("run").disabled = true;
  setStatus("classifying\u2026");
  try {
    const r = await req;
    let body;
    try {
      body = await r.json();
    } catch (e) {
      body = { error: `the server answered ${r.status} without JSON` };
    }
    if (!r.ok) {
      showError(body.error || `error ${r.status}`);
      setStatus("");
      return;
    }
    showResult(body);
    setStatus(`done: ${body.predictions[0].label} (${(100 * body.predictions[0].prob).toFixed(1)} %)`);
  } catch (e) {
    showError("The request failed: " + e);
    setStatus("");
  } finally {
    $("run").disabled = false;
  }
}

function previewFile() {
  const file = $("file").files[0];
  const v = $("preview");
  if (v.src) URL.revokeObjectURL(v.src);
  if (file) {
    $("pick").value = "";
    v.src = URL.createObjectURL(file);
    v.hidden = false;
  } else {
    v.removeAttribute("src");
    v.hidden = true;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("form").addEventListener("submit", classify);
  $("file").addEventListener("change", previewFile);
  $("pick").addEventListener("change", () => {
    if ($("pick").value) {
      $("file").value = "";
      previewFile();
    }
  });
  loadInfo();
});
