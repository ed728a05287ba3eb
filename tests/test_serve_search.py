"""The Search view of ``xclip-video serve --index LIB``: its JSON API (text and example-clip
queries equal to the library's own search, filters and their limits, thumbnails, library videos
with range requests, ids instead of paths, videos gone or changed since indexing), where its
work runs (the model thread, one search thread), the command's start-up errors, and the page in
headless Chromium."""

from __future__ import annotations

import csv
import http.client
import io
import json
import os
import shutil
import threading
import time
import urllib.parse

import numpy as np
import pytest
import torch

import xclip
from serve_requests import request
from xclip.data.synthetic import make_indexed_clip, read_frame_index
from xclip.inference import VideoClassifier, load_inference_model, load_moments, search_moments
from xclip_app.cli import main
from xclip_app.serve import ServeConfig, make_server

pytest.importorskip("faiss")
pytest.importorskip("pyarrow")
pytest.importorskip("av")

from xclip_app.serve import search_view  # noqa: E402
from xclip_app.serve.search_view import SearchView  # noqa: E402
from xclip_app.serve.thumbnails import THUMB_HEIGHT  # noqa: E402

LABELS = ["cooking", "dancing"]


def _embed(model, videos, lib) -> None:
    assert main(["embed", str(videos), "--model", str(model), "--device", "cpu", "--no-progress",
                 "--window", "1", "--stride", "0.5", "-o", str(lib)]) == 0  # fmt: skip


def _tiny(folder, seed: int):
    torch.manual_seed(seed)
    model = xclip.create_model("xclip_test")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return xclip.save_model(model, folder)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """A library of three videos in two folders (VP9 WebM: what every Chromium plays), embedded
    by absolute path, so the names shown must be made relative."""
    root = tmp_path_factory.mktemp("search")
    tiny = _tiny(root / "tiny", 0)
    videos = root / "videos"
    (videos / "cats").mkdir(parents=True)
    (videos / "dogs").mkdir()
    vp9 = {"codec": "libvpx-vp9", "gop": 15}
    make_indexed_clip(videos / "cats" / "a.webm", 180, size=(96, 64), seed=1, **vp9)
    make_indexed_clip(videos / "dogs" / "b.webm", 120, size=(96, 64), seed=2, **vp9)
    make_indexed_clip(videos / "c.webm", 90, size=(320, 240), seed=3, **vp9)
    lib = root / "lib"
    _embed(tiny, videos, lib)
    return root, tiny, videos, lib


def _start(clf, lib, **cfg):
    config = ServeConfig(model_name="tiny", labels=LABELS, max_upload_bytes=1 << 20, **cfg)
    srv = make_server(clf, config, "127.0.0.1", 0, views=(SearchView(lib, clf),))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture(scope="module")
def server(library):
    root, tiny, videos, lib = library
    clf = VideoClassifier(tiny, LABELS)
    srv = _start(clf, lib)
    srv.test_root, srv.test_videos, srv.test_lib, srv.test_tiny = root, videos, lib, tiny
    yield srv
    srv.shutdown()
    srv.server_close()


def search(server, **query):
    return request(server, "GET", "/api/search?" + urllib.parse.urlencode(query))


def _strings(doc):
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield k
            yield from _strings(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from _strings(v)
    elif isinstance(doc, str):
        yield doc


def _no_server_paths(server, doc) -> None:
    text = json.dumps(doc)
    assert str(server.test_root) not in text and os.path.realpath(server.test_root) not in text
    for s in _strings(doc):
        assert not s.startswith("/") or s.startswith("/api/search/"), s


def _as_library(server, found):
    """The library's own search results as the API names them."""
    return [(os.path.relpath(m.path, server.test_videos), round(m.start, 3), round(m.end, 3),
             round(m.score, 6), m.windows) for m in found]  # fmt: skip


def _as_api(res):
    return [(m["path"], m["start"], m["end"], m["score"], m["windows"]) for m in res["moments"]]


def _same(got, want, abs=1e-5) -> None:
    """The same moments (path, start, end, windows) with the same scores (to ``abs``)."""
    assert [(p, s, e, n) for p, s, e, _, n in got] == [(p, s, e, n) for p, s, e, _, n in want]
    assert [g[3] for g in got] == pytest.approx([w[3] for w in want], abs=abs)


# -- the API -----------------------------------------------------------------------------------


def test_info_and_text_search_equal_the_library_search(server):
    status, info, _ = request(server, "GET", "/api/info")
    assert status == 200
    s = info["search"]
    assert (s["library"], s["videos"], s["max_top_k"]) == ("lib", 3, 10_000)
    assert s["windows"] == 11 + 7 + 5 and (s["window"], s["stride"]) == (1.0, 0.5)
    _no_server_paths(server, info)
    status, res, _ = search(server, q="a red square moving", top_k=5)
    assert status == 200, res
    model = load_inference_model(server.test_tiny)
    index = load_moments(server.test_lib)
    want = search_moments("a red square moving", index, model, top_k=5)
    assert len(res["moments"]) == 5 and [m["rank"] for m in res["moments"]] == [1, 2, 3, 4, 5]
    _same(_as_api(res), _as_library(server, want))
    names = {m["path"] for m in res["moments"]}
    assert names <= {"cats/a.webm", "dogs/b.webm", "c.webm"}
    for m in res["moments"]:
        assert m["video"] == f"/api/search/videos/{m['video_id']}"
        route, t = m["thumbnail"].split("?t=")
        assert route == f"/api/search/thumbnails/{m['video_id']}"
        assert float(t) == pytest.approx((m["start"] + m["end"]) / 2, abs=0.051)
    _no_server_paths(server, res)


def test_filters_mean_what_they_mean_to_search(server):
    model = load_inference_model(server.test_tiny)
    index = load_moments(server.test_lib)
    status, res, _ = search(server, q="a dog", top_k=50, path="cats/*")
    assert status == 200 and res["moments"], res
    assert {m["path"] for m in res["moments"]} == {"cats/a.webm"}
    want = search_moments("a dog", index, model, top_k=50,
                          path_glob=str(server.test_videos / "cats" / "*"))  # fmt: skip
    _same(_as_api(res), _as_library(server, want))
    for lo, hi in ((1.5, None), (None, 1.5), (1.5, 2.1)):
        status, res, _ = search(server, q="a dog", top_k=50,
                                **{k: v for k, v in (("min_duration", lo), ("max_duration", hi))
                                   if v is not None})  # fmt: skip
        assert status == 200 and res["moments"], (lo, hi)
        assert all((lo or 0) <= m["end"] - m["start"] <= (hi or 1e9) for m in res["moments"])
        want = search_moments("a dog", index, model, top_k=50, min_duration=lo, max_duration=hi)
        _same(_as_api(res), _as_library(server, want))
    # a glob that cannot match, or one that would climb out of the folder: nothing (and 200)
    for glob in ("nothing*", "**/../../*", "/etc/*", "../*"):
        status, res, _ = search(server, q="a dog", path=glob)
        assert status == 200 and res["moments"] == [], glob


@pytest.mark.parametrize(
    "query, message",
    [
        ({"top_k": 0}, "from 1 to 10000"),
        ({"top_k": 10_001}, "from 1 to 10000"),
        ({"top_k": 10**9}, "from 1 to 10000"),
        ({"top_k": 10**30}, "top_k"),
        ({"top_k": "ten"}, "top_k"),
        ({"min_duration": -1}, "min_duration must be a finite number"),
        ({"max_duration": "nan"}, "max_duration must be a finite number"),
        ({"min_duration": "inf"}, "min_duration must be a finite number"),
        ({"min_duration": 3, "max_duration": 1}, "is above max_duration"),
        ({"q": ""}, "the search query is empty"),
        ({"q": " \t "}, "the search query is empty"),
        ({"q": "word " * 100}, "tokens"),
        ({"q": "x" * 2001}, "at most 2000"),
        ({"path": "*" * 1001}, "at most 1000"),
    ],
)
def test_bad_parameters_are_400_json(server, query, message):
    status, res, _ = search(server, **{"q": "a dog", **query})
    assert status == 400 and message in res["error"], res
    assert res["status"] == 400


def test_missing_query_and_odd_texts(server):
    status, res, _ = request(server, "GET", "/api/search")
    assert status == 400 and "q" in res["error"]
    for text in ("\u00e9t\u00e9 \U0001f415 \u202e", "%00", "<script>alert(1)</script>", "\x00a"):
        status, res, _ = search(server, q=text, top_k=3)
        assert status == 200 and len(res["moments"]) == 3 and res["query"] == text, text
    # a request line past the server's head limit: 431, before any route
    status, res, _ = request(server, "GET", "/api/search?q=" + "a" * 70_000)
    assert status == 431 and "too long" in res["error"]


def test_query_by_example_clip(server):
    clip = server.test_videos / "dogs" / "b.webm"
    q = urllib.parse.urlencode({"top_k": 4, "name": "../../etc/b.webm"})
    status, res, _ = request(server, "POST", f"/api/search/like?{q}", clip.read_bytes(),
                             {"Content-Type": "video/webm"})  # fmt: skip
    assert status == 200, res
    assert res["like"] == "b.webm"
    model = load_inference_model(server.test_tiny)
    want = search_moments(None, load_moments(server.test_lib), model, like=clip, top_k=4)
    _same(_as_api(res), _as_library(server, want), abs=1e-4)
    # the upload's limits and the strict decoder of the other routes
    like = "/api/search/like?top_k=3"
    cases = [
        (b"not a video" * 10, {"Content-Type": "video/mp4"}, 422, "could not be read as a video"),
        (clip.read_bytes(), {"Content-Type": "text/plain"}, 415, "is not a video"),
        (b"", {"Content-Type": "video/mp4"}, 400, "empty"),
    ]
    for body, headers, code, message in cases:
        status, res, _ = request(server, "POST", like, body, headers)
        assert status == code and message in res["error"], (code, res)
    # too large: refused from the Content-Length, before the body is read
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.putrequest("POST", like)
    conn.putheader("Content-Type", "video/mp4")
    conn.putheader("Content-Length", str(50 << 20))
    conn.endheaders()
    r = conn.getresponse()
    assert r.status == 413 and "the limit is 1.0 MiB" in json.loads(r.read())["error"]
    conn.close()
    status, res, _ = request(server, "POST", like + "&top_k=0", clip.read_bytes(),
                             {"Content-Type": "video/webm"})  # fmt: skip
    assert status == 400  # (a query option is checked before the body is read)


def test_thumbnails_are_the_middle_frame_as_a_small_jpeg(server):
    from PIL import Image

    status, res, _ = search(server, q="a dog", top_k=30)
    assert status == 200
    seen = {}
    for m in res["moments"]:
        if m["path"] in seen:
            continue
        status, jpeg, headers = request(server, "GET", m["thumbnail"])
        assert (
            status == 200
            and headers["Content-Type"] == "image/jpeg"
            and jpeg[:3] == b"\xff\xd8\xff"
        )
        img = Image.open(io.BytesIO(jpeg))
        seen[m["path"]] = img.size
        # the frame at the moment's middle (bar-coded frames: their number is in the picture)
        t = float(m["thumbnail"].split("?t=")[1])
        assert read_frame_index(np.asarray(img.convert("RGB"))) == round(t * 30)
    # small frames are kept as they are, larger ones scaled to the thumbnail height
    assert seen == {"cats/a.webm": (96, 64), "dogs/b.webm": (96, 64), "c.webm": (192, THUMB_HEIGHT)}
    # a second ask is served from the cache
    thumbs = server.service.views[0].thumbnails
    made = thumbs.made
    assert request(server, "GET", res["moments"][0]["thumbnail"])[0] == 200
    assert thumbs.made == made
    # a time past the end is the last frame; a bad time is a 400
    status, jpeg, _ = request(server, "GET", "/api/search/thumbnails/0?t=99999")
    assert status == 200 and jpeg[:3] == b"\xff\xd8\xff"
    for t in ("-1", "nan", "inf", "1e300", "abc"):
        status, err, _ = request(server, "GET", f"/api/search/thumbnails/0?t={t}")
        assert status == 400 and "error" in err, t


def test_library_videos_play_with_range_requests_by_id_only(server):
    status, res, _ = search(server, q="a cat", top_k=20)
    m = next(m for m in res["moments"] if m["path"] == "cats/a.webm")
    data = (server.test_videos / "cats" / "a.webm").read_bytes()
    status, body, headers = request(server, "GET", m["video"], headers={"Range": "bytes=100-299"})
    assert status == 206 and body == data[100:300]
    assert headers["Content-Range"] == f"bytes 100-299/{len(data)}"
    assert headers["Content-Type"] == "video/webm"
    status, body, _ = request(server, "GET", m["video"])
    assert status == 200 and body == data
    # anything but an id of the library: a JSON 404, never a file
    for vid in ("3", "99", "-1", "1.0", "0x1", "00", "+1", "%201", "%2e%2e%2fetc%2fpasswd", "..%2F..%2Fsecret",
                "1%00", "9" * 40, "%C2%B2", "c.webm", "cats/a.webm", "/etc/passwd"):  # fmt: skip
        for route in ("videos", "thumbnails"):
            status, err, _ = request(server, "GET", f"/api/search/{route}/{vid}")
            assert status == 404 and "error" in err, (route, vid, status)


def test_pending_searches_are_capped(server, monkeypatch):
    monkeypatch.setattr(search_view, "MAX_PENDING", 0)
    status, res, headers = search(server, q="a dog")
    assert status == 503 and headers["Retry-After"] == "5"


def test_work_runs_on_the_model_thread_and_one_search_thread(server, monkeypatch):
    """Text encoding shares the batcher's model thread (never beside a classify batch); FAISS
    runs on the search thread, one search at a time; classify answers meanwhile."""
    where: dict[str, set] = {"encode": set(), "search": set()}
    running, most = [0], [0]
    lock = threading.Lock()
    encode, nearest = search_view.query_vector, search_view.nearest_moments

    def spy_encode(*a, **kw):
        where["encode"].add(threading.current_thread().name)
        return encode(*a, **kw)

    def spy_nearest(*a, **kw):
        where["search"].add(threading.current_thread().name)
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            time.sleep(0.005)
            return nearest(*a, **kw)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(search_view, "query_vector", spy_encode)
    monkeypatch.setattr(search_view, "nearest_moments", spy_nearest)
    clip = server.test_videos / "c.webm"
    answers = []

    def one_search(i):
        answers.append(search(server, q=f"query number {i}", top_k=1 + i % 50)[0])

    def one_classify():
        answers.append(request(server, "POST", "/api/classify", clip.read_bytes(),
                               {"Content-Type": "video/webm"})[0])  # fmt: skip

    threads = [threading.Thread(target=one_search, args=(i,)) for i in range(24)]
    threads += [threading.Thread(target=one_classify) for _ in range(3)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    assert request(server, "GET", "/api/health")[0] == 200
    health = time.monotonic() - t0
    for t in threads:
        t.join(120)
    assert answers.count(200) == 27, answers
    assert all(n.startswith("xclip-model") for n in where["encode"]), where
    assert all(n.startswith("xclip-search") for n in where["search"]), where
    assert most[0] == 1
    assert health < 5, f"the event loop answered /api/health in {health:.1f} s"


def test_videos_gone_or_changed_since_indexing(library, tmp_path):
    """A video deleted, changed or moved away after the library was built: its thumbnail and
    video are a JSON 410 naming it, and searching still works."""
    _, tiny, _, _ = library
    videos = tmp_path / "videos"
    videos.mkdir()
    for i in range(3):
        make_indexed_clip(videos / f"v{i}.mp4", 45, size=(64, 48), seed=20 + i)
    lib = tmp_path / "lib"
    _embed(tiny, videos, lib)
    srv = _start(VideoClassifier(tiny, LABELS), lib)
    try:
        status, res, _ = search(srv, q="anything", top_k=10)
        ids = {m["path"]: m["video_id"] for m in res["moments"]}
        assert set(ids) == {"v0.mp4", "v1.mp4", "v2.mp4"}
        (videos / "v0.mp4").unlink()
        with open(videos / "v1.mp4", "ab") as f:
            f.write(b"\0" * 10)
        for route in ("videos", "thumbnails"):
            status, err, _ = request(srv, "GET", f"/api/search/{route}/{ids['v0.mp4']}")
            assert (
                status == 410 and "v0.mp4 is no longer where the library found it" in err["error"]
            )
            status, err, _ = request(srv, "GET", f"/api/search/{route}/{ids['v1.mp4']}")
            assert status == 410 and "v1.mp4 has changed since the library" in err["error"]
            assert request(srv, "GET", f"/api/search/{route}/{ids['v2.mp4']}")[0] == 200
        # the whole folder moved away
        videos.rename(tmp_path / "moved")
        status, res, _ = search(srv, q="anything", top_k=10)
        assert status == 200 and len(res["moments"]) >= 3
        for m in res["moments"]:
            status, err, _ = request(srv, "GET", m["thumbnail"])
            assert status == 410 and str(tmp_path) not in err["error"]
    finally:
        srv.shutdown()
        srv.server_close()


# -- the command -------------------------------------------------------------------------------


def test_serve_index_start_up_errors_are_one_line(library, tmp_path, capsys, monkeypatch):
    """A library of other weights, a missing or damaged one: exit 2 with one line, before the
    server starts. Without --model, the library's own model is served."""
    import xclip_app.serve

    _, tiny, videos, lib = library
    started = []

    class NotServing:
        def __init__(self, clf, config, host, port, views=()):
            started.append((clf, views))
            self.loopback, self.url = True, "http://127.0.0.1:0/"

        def serve_forever(self):
            pass

        def server_close(self):
            pass

    monkeypatch.setattr(xclip_app.serve, "make_server", NotServing)
    other = _tiny(tmp_path / "other", 1)

    def one_line(*argv) -> str:
        assert main(["serve", *map(str, argv), "--port", "0", "--device", "cpu"]) == 2
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        assert len(err) == 1 and "Traceback" not in err[0], err
        return err[0]

    assert "other model weights" in one_line("--model", other, "--index", lib)
    assert "not a moments library" in one_line("--model", tiny, "--index", tmp_path / "none")
    bad = tmp_path / "bad"
    shutil.copytree(lib, bad)
    (bad / "moments.faiss").write_bytes(b"garbage")
    assert "damaged" in one_line("--model", tiny, "--index", bad)
    assert started == []
    assert main(["serve", "--index", str(lib), "--port", "0", "--device", "cpu"]) == 0
    capsys.readouterr()
    ((clf, views),) = started
    assert [v.name for v in views] == ["search"] and views[0].index.model["source"]
    assert "--index LIB" in _help(capsys)


def _help(capsys) -> str:
    assert main(["serve", "--help"]) == 0
    return capsys.readouterr().out


# -- the page in headless Chromium -------------------------------------------------------------


def test_search_page_end_to_end_in_chromium(server, tmp_path):
    """Open ?page=search, type a query, see the grid with loaded thumbnails, click a moment:
    the video plays from its start (fetched with range requests) and its stretch is marked;
    filters, an empty result, an error, the downloads, and a link that reopens the search."""
    from test_serve import CHROMIUM, CHROMIUM_ARGS, _browser, _download, _wait

    pw = _browser()
    with pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 1400}, accept_downloads=True)
            errors, ranged = [], []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.on("response", lambda r: "/api/search/videos/" in r.url
                    and ranged.append((r.status, r.request.headers.get("range"))))  # fmt: skip
            page.goto(server.url + "?page=search")
            pw.expect(page.locator("#search-about")).to_contain_text("holds 3 video(s)")
            assert page.is_visible("#page-search") and page.is_hidden("#page-label")
            assert page.get_attribute("#pages button[data-page=search]", "aria-selected") == "true"

            page.fill("#search-q", "a red square moving")
            page.click("#search-run")
            page.wait_for_selector("#search-grid .moment", timeout=60_000)
            cards = page.locator("#search-grid .moment")
            assert cards.count() >= 3
            _wait(page, "#search-grid", "g => [...g.querySelectorAll('img')].every("
                  "i => i.complete && i.naturalWidth > 0)")  # fmt: skip
            shown = page.eval_on_selector_all(
                "#search-grid .moment",
                "cs => cs.map(c => [c.dataset.path, Number(c.dataset.start), Number(c.dataset.end)])",
            )
            status, res, _ = search(server, q="a red square moving", top_k=24)
            assert shown == [[m["path"], m["start"], m["end"]] for m in res["moments"]]
            assert "moments for \u201ca red square moving\u201d" in page.inner_text("#search-title")

            # a click plays the video from the moment's start, fetched with range requests
            k = next(i for i, s in enumerate(shown) if s[1] > 0.5)
            path, start, end = shown[k]
            cards.nth(k).click()
            _wait(
                page,
                "#search-video",
                f"v => v.readyState >= 1 && Math.abs(v.currentTime - {start}) < 0.3",
            )
            assert page.inner_text("#search-playing") == path
            assert "playing" in (cards.nth(k).get_attribute("class") or "")
            assert page.eval_on_selector("#search-video", "v => v.seekable.length > 0")
            assert any(status == 206 and rng for status, rng in ranged), ranged
            stretch = page.locator("#search-stretch")
            assert float(stretch.get_attribute("data-start")) == start
            box, track = stretch.bounding_box(), page.locator("#search-track").bounding_box()
            duration = page.eval_on_selector("#search-video", "v => v.duration")
            assert (box["x"] - track["x"]) / track["width"] == pytest.approx(
                start / duration, abs=0.02
            )
            assert box["width"] / track["width"] == pytest.approx(
                (end - start) / duration, abs=0.02
            )

            page.screenshot(path=str(tmp_path / "search.png"), full_page=True)
            if os.environ.get("XCLIP_SCREENSHOT_SEARCH"):
                shutil.copy(tmp_path / "search.png", os.environ["XCLIP_SCREENSHOT_SEARCH"])

            # downloads hold what the grid shows
            doc = json.loads(_download(page, "#search-download-json"))
            assert [[m["path"], m["start"], m["end"]] for m in doc["moments"]] == shown
            rows = list(csv.reader(io.StringIO(_download(page, "#search-download-csv"))))
            assert rows[0] == ["rank", "path", "start_s", "end_s", "score", "windows"]
            assert [[r[1], float(r[2]), float(r[3])] for r in rows[1:]] == shown

            # filters in plain words; the link reopens the same search and runs it again
            page.click("#search-filters summary")
            page.fill("#search-path", "cats/*")
            page.fill("#search-k", "5")
            page.click("#search-run")
            _, res, _ = search(server, q="a red square moving", top_k=5, path="cats/*")
            n_cats = len(res["moments"])
            assert n_cats >= 2
            pw.expect(page.locator("#search-grid .moment")).to_have_count(n_cats, timeout=60_000)
            cats = page.eval_on_selector_all(
                "#search-grid .moment", "cs => cs.map(c => c.dataset.path)"
            )
            assert set(cats) == {"cats/a.webm"}
            link = page.get_attribute("#search-permalink", "href")
            assert "page=search" in link and "path=cats%2F*" in link and "top_k=5" in link
            again = browser.new_page(viewport={"width": 1000, "height": 1400})
            again.on("pageerror", lambda e: errors.append(str(e)))
            again.goto(server.url.rstrip("/") + link)
            pw.expect(again.locator("#search-grid .moment")).to_have_count(n_cats, timeout=60_000)
            assert again.input_value("#search-q") == "a red square moving"
            assert (
                again.input_value("#search-path") == "cats/*"
                and again.input_value("#search-k") == "5"
            )
            assert (
                again.eval_on_selector_all(
                    "#search-grid .moment", "cs => cs.map(c => c.dataset.path)"
                )
                == cats
            )

            # nothing found says so; a bad value is shown as an error
            page.fill("#search-path", "nothing-like-this*")
            page.click("#search-run")
            pw.expect(page.locator("#search-title")).to_contain_text("No moment found")
            assert "loosen the filters" in page.inner_text("#search-status")
            assert page.locator("#search-grid .moment").count() == 0
            page.fill("#search-path", "")
            page.fill("#search-q", "word " * 100)
            page.click("#search-run")
            page.wait_for_selector("#search-error:not([hidden])", timeout=30_000)
            assert "tokens" in page.inner_text("#search-error")
            assert all("400" in e for e in errors), errors
        finally:
            browser.close()
