"""The local web server: JSON API (limits, content types, path traversal, Host check, the
timeline, range requests, OpenAPI docs, dynamic batching) and an end to end test of each view of
the page in headless Chromium (Debian's ``chromium`` driven by Playwright)."""

from __future__ import annotations

import csv
import http.client
import io
import json
import os
import shutil
import socket
import threading
import time
import urllib.parse

import pytest
import torch

import xclip
from serve_requests import request
from xclip.inference import VideoClassifier
from xclip_app.serve import ServeConfig, make_server

LABELS = ["cooking", "dancing", "riding a bike"]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory, clip_factory):
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("serve")
    model_dir = xclip.save_model(xclip.create_model("xclip_test"), root / "tiny")
    videos = root / "videos"
    (videos / "sub").mkdir(parents=True)
    clip = clip_factory("serve_clip.mp4", 60, size=(96, 64))
    (videos / "clip.mp4").write_bytes(clip.read_bytes())
    # VP9 in WebM: a video every Chromium plays (and seeks in), for the timeline view
    long = clip_factory("serve_long.webm", 180, size=(96, 64), codec="libvpx-vp9", gop=15)
    (videos / "long.webm").write_bytes(long.read_bytes())
    (videos / "sub" / "second.mp4").write_bytes(clip.read_bytes())
    (videos / "broken.mp4").write_text("not a video\n")
    outside = root / "secret.mp4"
    outside.write_bytes(clip.read_bytes())
    os.symlink(outside, videos / "escape.mp4")  # a link leaving the folder

    clf = VideoClassifier(model_dir, LABELS)
    cfg = ServeConfig(
        model_name="tiny", labels=LABELS, videos_dir=videos, max_upload_bytes=1 << 20,
        max_windows=50,
    )  # fmt: skip
    srv = make_server(clf, cfg, "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    srv.test_clip = clip
    srv.test_long = long
    srv.test_root = root
    yield srv
    srv.shutdown()
    srv.server_close()


def upload(server, data, ctype="video/mp4", **query):
    q = urllib.parse.urlencode(query, doseq=True)
    return request(server, "POST", f"/api/classify?{q}", data, {"Content-Type": ctype})


# ---------------------------------------------------------------------------------------------
# HTTP API
# ---------------------------------------------------------------------------------------------


def test_page_and_static_files(server):
    status, body, headers = request(server, "GET", "/")
    assert status == 200 and b"<svg" not in body and b"app.js" in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    for path in ("/static/app.js", "/static/style.css"):
        status, body, _ = request(server, "GET", path)
        assert status == 200 and len(body) > 100
    assert b"http" not in request(server, "GET", "/static/app.js")[1].replace(
        b"http://www.w3.org/2000/svg", b""
    )  # no external resources (CDN)


def test_info(server):
    status, info, _ = request(server, "GET", "/api/info")
    assert status == 200
    assert info["num_frames"] == 4 and info["labels"] == LABELS
    assert info["max_upload_bytes"] == 1 << 20
    assert info["videos"] == ["broken.mp4", "clip.mp4", "long.webm", "sub/second.mp4"]
    # (not the escaping link)


def test_upload_classify(server):
    status, res, _ = upload(server, server.test_clip.read_bytes(), name="my clip.mp4")
    assert status == 200, res
    assert res["video"] == "my clip.mp4" and res["num_frames"] == 4
    assert [p["label"] for p in res["predictions"]] != [] and len(res["predictions"]) == 3
    assert sum(p["prob"] for p in res["predictions"]) == pytest.approx(1, abs=1e-4)
    assert [f["index"] for f in res["frames"]] == [7, 22, 37, 52]
    assert all(f["image"].startswith("data:image/jpeg;base64,") for f in res["frames"])
    assert set(res["timings"]) >= {"decode", "preprocess", "model", "batch"}
    # labels from ?labels= (comma separated) and ?label= (kept whole), octet-stream accepted
    status, res, _ = upload(
        server, server.test_clip.read_bytes(), "application/octet-stream",
        labels="a,b", label=["c, with comma"], template="a video of {}",
    )  # fmt: skip
    assert status == 200, res
    assert {p["label"] for p in res["predictions"]} == {"a", "b", "c, with comma"}
    assert res["template"] == "a video of {}"


def test_pick_a_video_of_the_folder(server):
    body = json.dumps({"video": "sub/second.mp4", "labels": ["x", "y"]})
    status, res, _ = request(
        server, "POST", "/api/classify", body, {"Content-Type": "application/json"}
    )
    assert status == 200, res
    assert res["video"] == "sub/second.mp4" and len(res["predictions"]) == 2


@pytest.mark.parametrize(
    "video, code",
    [
        ("../secret.mp4", 403),
        ("sub/../../secret.mp4", 403),
        ("/etc/passwd", 403),
        ("escape.mp4", 403),  # a symlink out of the folder
        ("missing.mp4", 404),
        ("", 400),
        (3, 400),
    ],
)
def test_pick_refuses_paths_outside_the_folder(server, video, code):
    body = json.dumps({"video": video})
    status, res, _ = request(
        server, "POST", "/api/classify", body, {"Content-Type": "application/json"}
    )
    assert status == code, res
    assert "error" in res


def test_static_traversal(server):
    for path in (
        "/static/../server.py",
        "/static/%2e%2e/server.py",
        "/static/..%2fserver.py",
        "/../../etc/passwd",
        "/static/",
        "/server.py",
    ):
        status, res, _ = request(server, "GET", path)
        assert status == 404, path


def test_upload_limits_and_content_types(server):
    # too large: refused from the Content-Length, before the body is read
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.putrequest("POST", "/api/classify")
    conn.putheader("Content-Type", "video/mp4")
    conn.putheader("Content-Length", str(50 << 20))
    conn.endheaders()
    r = conn.getresponse()
    res = json.loads(r.read())
    conn.close()
    assert r.status == 413 and "limit is 1.0 MiB" in res["error"]
    # no Content-Length
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.putrequest("POST", "/api/classify")
    conn.putheader("Content-Type", "video/mp4")
    conn.endheaders()
    r = conn.getresponse()
    assert r.status == 411
    conn.close()
    # not a video content type
    for ctype in (
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "",
    ):
        status, res, _ = upload(server, b"abc", ctype)
        assert status == 415 and "not a video" in res["error"], ctype
    # a file that is not a video
    status, res, _ = upload(server, b"this is not a video\n" * 50, name="notes.mp4")
    assert status == 422 and res["error"].startswith("notes.mp4 could not be read as a video")
    # empty body, bad labels, bad JSON
    assert upload(server, b"")[0] == 400
    status, res, _ = upload(server, server.test_clip.read_bytes(), labels="run,Run")
    assert status == 400 and "duplicate" in res["error"]
    status, res, _ = upload(server, server.test_clip.read_bytes(), labels="a", template="no slot")
    assert status == 400 and "template" in res["error"]
    status, res, _ = request(
        server, "POST", "/api/classify", b"{nope", {"Content-Type": "application/json"}
    )
    assert status == 400 and "JSON" in res["error"]
    status, res, _ = request(server, "POST", "/api/other", b"x", {"Content-Type": "video/mp4"})
    assert status == 404
    assert request(server, "GET", "/api/classify")[0] == 405


def test_host_header_is_checked(server):
    status, res, _ = request(server, "GET", "/api/info", headers={"Host": "attacker.example:80"})
    assert status == 403 and "not allowed" in res["error"]
    assert request(server, "GET", "/api/info", headers={"Host": "localhost"})[0] == 200


def test_timeline_of_an_upload_matches_the_library(server):
    labels = ["a", "b", "c"]
    status, res, _ = request(
        server, "POST", "/api/timeline?labels=a,b,c&window=0.5&stride=0.25",
        server.test_clip.read_bytes(), {"Content-Type": "video/mp4"},
    )  # fmt: skip
    assert status == 200, res
    assert res["labels"] == labels and res["window"] == 0.5 and res["stride"] == 0.25
    expected = server.classifier.timeline(str(server.test_clip), 0.5, 0.25, labels=labels)
    # (windows start on frames: 0.25 s at 30 fps is frame 8, 0.267 s)
    assert [w["start"] for w in res["windows"]] == [round(e.start, 3) for e in expected]
    assert len(expected) == 7 and res["windows"][-1]["end"] == 2.0 and res["duration"] == 2.0
    for w, e in zip(res["windows"], expected, strict=True):
        assert sum(w["probs"]) == pytest.approx(1, abs=1e-4)
        assert w["top"] == e.label == labels[max(range(3), key=lambda k: w["probs"][k])]
        assert w["probs"] == pytest.approx(
            [dict(zip(e.labels, e.probs, strict=True))[x] for x in labels], abs=1e-4
        )


def test_timeline_of_a_picked_video_and_its_errors(server):
    body = json.dumps({"video": "long.webm", "labels": ["x", "y"], "window": 2, "stride": 1})
    status, res, _ = request(
        server, "POST", "/api/timeline", body, {"Content-Type": "application/json"}
    )
    assert status == 200, res
    assert [(w["start"], w["end"]) for w in res["windows"]] == [
        (0, 2),
        (1, 3),
        (2, 4),
        (3, 5),
        (4, 6),
    ]
    clip = server.test_clip.read_bytes()
    for query, message in (
        ("", "needs ?window="),
        ("window=0.001", "shorter than one frame"),
        ("window=0.034&stride=0.034", "--max-windows"),
        ("window=abc", "window"),
        ("window=1&stride=-1", "stride must be"),
    ):
        status, res, _ = request(
            server, "POST", f"/api/timeline?{query}", clip, {"Content-Type": "video/mp4"}
        )
        assert status == 400 and message in res["error"], (query, res)
    body = json.dumps({"video": "clip.mp4", "window": "2"})
    status, res, _ = request(
        server, "POST", "/api/timeline", body, {"Content-Type": "application/json"}
    )
    assert status == 400 and "'window' must be a number" in res["error"]


def test_videos_of_the_folder_are_played_with_range_requests(server):
    size = (server.test_root / "videos" / "long.webm").stat().st_size
    status, body, headers = request(
        server, "GET", "/api/videos/long.webm", headers={"Range": "bytes=100-199"}
    )
    assert status == 206 and len(body) == 100
    assert headers["Content-Range"] == f"bytes 100-199/{size}"
    assert body == server.test_long.read_bytes()[100:200]
    assert request(server, "GET", "/api/videos/long.webm")[0] == 200
    for name, code in (("escape.mp4", 403), ("%2e%2e/secret.mp4", 403), ("missing.mp4", 404)):
        status, res, _ = request(server, "GET", f"/api/videos/{name}")
        assert status == code and "error" in res, name


def test_openapi_docs(server):
    status, doc, _ = request(server, "GET", "/openapi.json")
    assert status == 200
    assert {"/api/classify", "/api/timeline", "/api/info"} <= set(doc["paths"])
    body = doc["paths"]["/api/timeline"]["post"]["requestBody"]["content"]
    assert {"video/*", "application/json"} <= set(body)
    status, page, headers = request(server, "GET", "/docs")
    assert status == 200 and b"swagger" in page.lower()


def test_concurrent_requests_share_model_calls(server):
    """Uploads that arrive together are classified in fewer model calls than requests, with the
    same probabilities as one at a time."""
    cfg = ServeConfig(
        model_name="tiny", labels=LABELS, max_upload_bytes=1 << 20, batch_wait=0.5,
        max_batch_views=8, decode_workers=4,
    )  # fmt: skip
    srv = make_server(server.classifier, cfg, "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        data = server.test_clip.read_bytes()
        answers = [None] * 6

        def one(i):
            labels = "cooking,dancing" if i % 2 else "riding a bike,swimming,cooking"
            answers[i] = upload(srv, data, labels=labels)

        workers = [threading.Thread(target=one, args=(i,)) for i in range(6)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(120)
        assert all(a is not None and a[0] == 200 for a in answers), answers
        stats = srv.service.batcher.stats
        assert stats.videos == 6 and stats.calls < 6
        assert max(a[1]["timings"]["batch"] for a in answers) > 1
        for i, (_, res, _) in enumerate(answers):
            labels = ["cooking", "dancing"] if i % 2 else ["riding a bike", "swimming", "cooking"]
            alone = server.classifier(str(server.test_clip), labels)
            got = {p["label"]: p["prob"] for p in res["predictions"]}
            assert got == pytest.approx(dict(zip(alone.labels, alone.probs, strict=True)), abs=1e-4)
    finally:
        srv.shutdown()
        srv.server_close()


def test_serve_command_errors(capsys, tmp_path):
    from xclip_app.cli import main

    rc = main(["serve", "--model", "xclip_test", "--videos-dir", str(tmp_path / "none")])
    err = capsys.readouterr().err
    assert rc == 2 and "is not a folder" in err and "Traceback" not in err
    rc = main(["serve", "--model", "xclip_test", "--labels", "a,A"])
    assert rc == 2 and "duplicate" in capsys.readouterr().err
    rc = main(
        ["serve", "--model", "xclip_test", "--max-upload-mb", "8", "--max-upload-memory-mb", "4"]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "--max-upload-memory-mb (4) must be at least --max-upload-mb (8)" in err
    assert len(err.strip().splitlines()) == 1
    rc = main(["serve", "--model", "xclip_test", "--max-connections", "0"])
    assert rc == 2 and "--max-connections must be >= 1" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        rc = main(["serve", "--model", "xclip_test", "--host", "127.0.0.1", "--port", port])
    err = capsys.readouterr().err
    assert rc == 2 and "pick another --port" in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------------
# the page in headless Chromium
# ---------------------------------------------------------------------------------------------


def _browser():
    pw = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return pw


def _coloured_pixels(png: bytes, rgb: tuple[int, int, int], tol: int = 40) -> int:
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    px = img.load()
    w, h = img.size
    return sum(
        1
        for x in range(0, w, 2)
        for y in range(0, h, 2)
        if all(abs(px[x, y][c] - rgb[c]) <= tol for c in range(3))
    )


def _download(page, selector: str) -> str:
    with page.expect_download() as d:
        page.click(selector)
    return open(d.value.path(), encoding="utf-8").read()


def _wait(page, selector: str, script: str, timeout: float = 30) -> object:
    """Poll ``script`` on ``selector`` until it is truthy (the CSP forbids wait_for_function)."""
    deadline = time.monotonic() + timeout
    while True:
        value = page.eval_on_selector(selector, script)
        if value:
            return value
        assert time.monotonic() < deadline, f"{script} never held on {selector}"
        time.sleep(0.1)


def test_page_end_to_end_in_chromium(server, tmp_path):
    """Each view in a real browser: upload and classify, the timeline of a picked video, seeking
    by a click on the plot, downloads, and a link that reopens the view."""
    pw = _browser()
    bad = tmp_path / "broken.mp4"
    bad.write_text("not a video\n" * 20)
    labels4 = ["cooking", "dancing", "riding a bike", "swimming"]
    with pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 1400}, accept_downloads=True)
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.goto(server.url)
            pw.expect(page.locator("#labels")).to_have_value("\n".join(LABELS))
            about = page.inner_text("#model-info")
            assert "4 frames" in about and "32\u00d732 pixels" in about and "px" not in about

            # -- Classify: upload a clip, type labels, run ---------------------------------------
            page.set_input_files("#file", str(server.test_clip))
            page.fill("#labels", "\n".join(labels4))
            page.click("#run")
            page.wait_for_selector("#chart .bar", timeout=60_000)
            assert page.locator("#chart .bar").count() == 4
            assert page.locator("#frames img").count() == 4
            assert "done:" in page.inner_text("#status")
            shown = page.eval_on_selector_all(
                "#chart .row", "rs => rs.map(r => [r.dataset.label, Number(r.dataset.prob)])"
            )
            assert sum(pr for _, pr in shown) == pytest.approx(1, abs=1e-3)
            assert page.eval_on_selector_all(
                "#frames img", "ims => ims.every(i => i.naturalWidth > 0)"
            )
            bars = _coloured_pixels(page.locator("#chart").screenshot(), (0x2A, 0x6F, 0xDB))
            assert bars > 20, "no bars in the chart screenshot"
            # keep it: JSON and CSV downloads hold what the chart shows
            doc = json.loads(_download(page, "#download-json"))
            assert [[q["label"], q["prob"]] for q in doc["predictions"]] == shown
            rows = list(csv.reader(io.StringIO(_download(page, "#download-csv"))))
            assert rows[0] == ["label", "probability"]
            assert [r[0] for r in rows[1:]] == [lb for lb, _ in shown]
            assert "choose the file again" in page.inner_text("#permalink-note")
            # a bad file: a clear message
            page.set_input_files("#file", str(bad))
            page.click("#run")
            page.wait_for_selector("#error:not([hidden])", timeout=30_000)
            assert "could not be read as a video" in page.inner_text("#error")

            # -- Timeline of a picked video, played from the server ------------------------------
            page.set_input_files("#file", [])
            page.select_option("#pick", "long.webm")
            page.click("#view-timeline")
            assert page.is_visible("#window") and page.is_hidden("#results-classify")
            page.fill("#window", "1")
            page.fill("#stride", "0.5")
            page.click("#run")
            page.wait_for_selector("#plot .series", timeout=60_000)
            assert page.locator("#plot .series").count() == 4  # a line per label
            assert page.locator("#band .stretch").count() == 11  # 6 s: 1 s every 0.5 s
            tops = page.eval_on_selector_all("#band .stretch", "rs => rs.map(r => r.dataset.top)")
            assert set(tops) <= set(labels4)
            plot_png = page.locator("#plot-box").screenshot()
            assert _coloured_pixels(plot_png, (0x2A, 0x6F, 0xDB)) > 20, "no line of the 1st label"
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
            if os.environ.get("XCLIP_SCREENSHOT"):
                shutil.copy(tmp_path / "page.png", os.environ["XCLIP_SCREENSHOT"])
            # clicking 3/4 into the plot seeks the video to 3/4 of its 6 s; the browser can seek
            # only because the server answers range requests
            _wait(page, "#preview", "v => v.readyState >= 1")
            box = page.locator("#plot .plot-area").bounding_box()
            page.mouse.click(box["x"] + 0.75 * box["width"], box["y"] + box["height"] / 2)
            _wait(page, "#preview", "v => Math.abs(v.currentTime - 4.5) < 0.1")
            assert page.eval_on_selector(
                "#preview", "v => v.seekable.length > 0 && v.seekable.end(0) > 5"
            )
            assert float(page.get_attribute("#cursor", "data-time")) == pytest.approx(4.5, abs=0.05)
            assert "jumped to 4.5 s" in page.inner_text("#status")
            # downloads of the timeline
            doc = json.loads(_download(page, "#download-json"))
            assert [w["top"] for w in doc["windows"]] == tops and doc["labels"] == labels4
            rows = list(csv.reader(io.StringIO(_download(page, "#download-csv"))))
            assert rows[0] == ["start_s", "end_s", "best_label", *labels4] and len(rows) == 12
            # the link reopens the same view, and runs it again
            link = page.get_attribute("#permalink", "href")
            assert "view=timeline" in link and "video=long.webm" in link
            again = browser.new_page(viewport={"width": 1000, "height": 1400})
            again.on("pageerror", lambda e: errors.append(str(e)))
            again.goto(server.url.rstrip("/") + link)
            again.wait_for_selector("#plot .series", timeout=60_000)
            assert again.input_value("#window") == "1" and again.input_value("#stride") == "0.5"
            assert again.input_value("#labels") == "\n".join(labels4)
            assert (
                again.eval_on_selector_all("#band .stretch", "rs => rs.map(r => r.dataset.top)")
                == tops
            )
            # and the views share the video and labels: Classify of the same pick
            again.click("#view-classify")
            again.click("#run")
            pw.expect(again.locator("#result-name")).to_have_text("long.webm", timeout=60_000)
            assert again.locator("#chart .bar").count() == 4
            assert errors == [] or all("422" in e for e in errors), errors
        finally:
            browser.close()
