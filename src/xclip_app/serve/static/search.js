// The Search page ("Find a moment"), shown when the server has --index: see app.js PAGES.
// A text (or an example clip) finds moments of the server's library; each is a card with the
// frame at its middle; a click plays its video from the moment's start (the server answers
// range requests, so the browser seeks) and marks the moment's stretch under the video.
// Results download as JSON/CSV; the address bar holds the search, so a link reopens it.
"use strict";

const search = {
  info: null,
  result: null, // the last answer, with what was asked
  restored: false,
  playing: null, // the moment being played
};

function searchError(msg) {
  $("search-error").textContent = msg;
  $("search-error").hidden = !msg;
}

function fmtTime(t) {
  if (t < 60) return `${t.toFixed(1)} s`;
  const m = Math.floor(t / 60);
  const s = (t - 60 * m).toFixed(1).padStart(4, "0");
  return `${m}:${s}`;
}

function searchQuery() {
  // the options of a search as the API and the address bar name them
  const q = new URLSearchParams();
  const k = $("search-k").value.trim();
  q.set("top_k", k || String(search.info.top_k));
  const path = $("search-path").value.trim();
  if (path) q.set("path", path);
  if ($("search-min").value.trim()) q.set("min_duration", $("search-min").value.trim());
  if ($("search-max").value.trim()) q.set("max_duration", $("search-max").value.trim());
  return q;
}

function checkFilters() {
  const k = Number($("search-k").value || search.info.top_k);
  if (!(Number.isInteger(k) && k >= 1 && k <= search.info.max_top_k)) {
    return `How many moments: a whole number from 1 to ${search.info.max_top_k}.`;
  }
  for (const [id, what] of [["search-min", "at least"], ["search-max", "at most"]]) {
    const v = $(id).value.trim();
    if (v && !(Number(v) >= 0)) return `\u201c${what}\u201d must be a number of seconds, 0 or more.`;
  }
  const lo = $("search-min").value.trim(), hi = $("search-max").value.trim();
  if (lo && hi && Number(lo) > Number(hi)) return "The shortest length is above the longest.";
  return "";
}

// -- the grid --------------------------------------------------------------------------------
function drawMoments(res) {
  const grid = $("search-grid");
  grid.replaceChildren();
  for (const m of res.moments) {
    const card = document.createElement("button");
    card.type = "button";
    card.className = "moment";
    card.dataset.rank = m.rank;
    card.dataset.start = m.start;
    card.dataset.end = m.end;
    card.dataset.path = m.path;
    const img = document.createElement("img");
    img.loading = "lazy";
    img.src = m.thumbnail;
    img.alt = `${m.path} at ${fmtTime((m.start + m.end) / 2)}`;
    const name = document.createElement("span");
    name.className = "moment-name";
    name.textContent = m.path;
    name.title = m.path;
    const when = document.createElement("span");
    when.className = "moment-time";
    when.textContent = `${fmtTime(m.start)} \u2013 ${fmtTime(m.end)}`;
    const score = document.createElement("span");
    score.className = "moment-score";
    score.textContent = `#${m.rank} \u00b7 match ${m.score.toFixed(3)}`;
    score.title = "cosine similarity of the moment and the query (-1 to 1; higher fits better)";
    card.append(img, name, when, score);
    card.addEventListener("click", () => play(m, card));
    grid.appendChild(card);
  }
}

function play(m, card) {
  for (const c of document.querySelectorAll("#search-grid .moment.playing")) c.classList.remove("playing");
  card.classList.add("playing");
  search.playing = m;
  const v = $("search-video");
  $("search-player").hidden = false;
  $("search-playing").textContent = m.path;
  $("search-moment-info").textContent =
    `the moment: ${fmtTime(m.start)} \u2013 ${fmtTime(m.end)} (${m.windows} stretch(es) of the library)`;
  const start = () => {
    v.currentTime = m.start;
    drawStretch();
    const p = v.play();
    if (p) p.catch(() => {}); // (a browser may refuse to play before a gesture: it stays paused)
  };
  if (v.dataset.src === m.video && v.readyState >= 1) {
    start();
  } else {
    v.dataset.src = m.video;
    v.addEventListener("loadedmetadata", start, { once: true });
    v.src = m.video;
  }
  $("search-player").scrollIntoView({ block: "nearest" });
}

function drawStretch() {
  const v = $("search-video"), m = search.playing;
  const d = v.duration;
  const bar = $("search-stretch");
  if (!m || !(d > 0) || !isFinite(d)) {
    bar.hidden = true;
    return;
  }
  bar.hidden = false;
  bar.style.left = `${(100 * m.start) / d}%`; // (CSSOM: allowed by the CSP)
  bar.style.width = `${Math.max(0.5, (100 * (m.end - m.start)) / d)}%`;
  bar.dataset.start = m.start;
  bar.dataset.end = m.end;
}

// -- keeping the results ---------------------------------------------------------------------
function searchCsv(res) {
  const rows = [["rank", "path", "start_s", "end_s", "score", "windows"],
                ...res.moments.map((m) => [m.rank, m.path, m.start, m.end, m.score, m.windows])];
  return rows.map((r) => r.map(csvCell).join(",")).join("\r\n") + "\r\n";
}

function searchDownload(kind) {
  const res = search.result;
  if (!res) return;
  const base = "moments";
  if (kind === "json") saveText(`${base}.json`, JSON.stringify(res, null, 1), "application/json");
  else saveText(`${base}.csv`, searchCsv(res), "text/csv");
}

function searchKeep(res) {
  search.result = res;
  const link = location.pathname + "?" + viewState().toString();
  history.replaceState(null, "", link);
  $("search-permalink").href = link;
  $("search-permalink-note").textContent = res.like
    ? "(an example clip is not kept by the server: the link restores the filters; choose the clip again)"
    : "";
  $("search-keep").hidden = false;
}

// -- running ---------------------------------------------------------------------------------
async function runSearch(ev) {
  if (ev) ev.preventDefault();
  searchError("");
  const text = $("search-q").value.trim();
  const clip = $("search-like").files[0];
  const bad = checkFilters();
  if (bad) {
    searchError(bad);
    return;
  }
  const q = searchQuery();
  let req;
  if (clip) {
    if (clip.size > info.max_upload_bytes) {
      searchError(`${clip.name} is ${mb(clip.size)}; the server accepts at most ${mb(info.max_upload_bytes)}.`);
      return;
    }
    q.set("name", clip.name);
    req = fetch("/api/search/like?" + q.toString(), {
      method: "POST",
      headers: { "Content-Type": clip.type || "application/octet-stream" },
      body: clip,
    });
  } else if (text) {
    q.set("q", text);
    req = fetch("/api/search?" + q.toString());
  } else {
    searchError("Type what happens in the moment you look for (or choose an example clip).");
    return;
  }
  $("search-run").disabled = true;
  $("search-status").textContent = "searching\u2026";
  try {
    const r = await req;
    const body = await answerOf(r);
    if (!r.ok) {
      searchError(body.error || `error ${r.status}`);
      $("search-status").textContent = "";
      return;
    }
    showResults(body);
  } catch (e) {
    searchError("The request failed: " + e);
    $("search-status").textContent = "";
  } finally {
    $("search-run").disabled = false;
  }
}

function showResults(res) {
  const n = res.moments.length;
  const what = res.like ? `moments like ${res.like}` : `\u201c${res.query}\u201d`;
  $("search-title").textContent = n
    ? `${n} moment${n === 1 ? "" : "s"} for ${what}`
    : `No moment found for ${what}`;
  drawMoments(res);
  $("search-results").hidden = false;
  const filtered = res.filters.path || res.filters.min_duration !== null || res.filters.max_duration !== null;
  const ms = (s) => (1000 * s).toFixed(0) + " ms";
  $("search-status").textContent = n
    ? `done in ${ms(res.timings.query + res.timings.search)}`
    : "nothing matched" + (filtered ? ": loosen the filters (Narrow it down)" : "");
  searchKeep(res);
}

// -- the page --------------------------------------------------------------------------------
function restoreSearch() {
  const q = new URLSearchParams(location.search);
  if (q.get("page") !== "search") return false;
  if (q.has("q")) $("search-q").value = q.get("q");
  if (q.has("top_k")) $("search-k").value = q.get("top_k");
  if (q.has("path")) $("search-path").value = q.get("path");
  if (q.has("min_duration")) $("search-min").value = q.get("min_duration");
  if (q.has("max_duration")) $("search-max").value = q.get("max_duration");
  if (q.has("path") || q.has("min_duration") || q.has("max_duration")) $("search-filters").open = true;
  return Boolean($("search-q").value.trim());
}

PAGES.search = {
  init(i) {
    const s = i.search;
    search.info = s;
    const windows = s.window === s.stride
      ? `stretches of ${s.window} s`
      : `stretches of ${s.window} s, a new one every ${s.stride} s`;
    $("search-about").textContent =
      `The library \u201c${s.library}\u201d holds ${s.videos} video(s), cut into ${s.windows} ${windows}.`;
    $("search-k").value = s.top_k;
    $("search-k").max = s.max_top_k;
    $("search-q").maxLength = s.max_query_chars;
  },
  show() {
    if (search.restored) return;
    search.restored = true;
    if (restoreSearch()) runSearch();
  },
  state(q) {
    const text = $("search-q").value.trim();
    if (text) q.set("q", text);
    for (const [k, v] of searchQuery()) q.set(k, v);
  },
};

document.addEventListener("DOMContentLoaded", () => {
  $("search-form").addEventListener("submit", runSearch);
  $("search-like").addEventListener("change", () => {
    if ($("search-like").files[0]) $("search-q").value = "";
  });
  $("search-q").addEventListener("input", () => {
    if ($("search-q").value) $("search-like").value = "";
  });
  $("search-video").addEventListener("loadedmetadata", drawStretch);
  $("search-download-json").addEventListener("click", () => searchDownload("json"));
  $("search-download-csv").addEventListener("click", () => searchDownload("csv"));
});
