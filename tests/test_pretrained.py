"""The released-weights table and the downloader (never touches the network: a stand-in hub on
127.0.0.1, reached through ``HF_ENDPOINT`` as ``huggingface_hub`` would reach the real one)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

import xclip
import xclip.pretrained as P
from xclip.ownership import kept_name
from xclip_app.cli import main

# ------------------------------------------------------------------------------------------------
# table integrity


def test_every_documented_checkpoint_is_listed():
    names = P.list_pretrained()
    assert len(names) == 18  # 6 K400 + 3 K600 + 8 few-shot + 1 zero-shot
    assert len(set(names)) == len(names)
    assert len({e.hf_hub_id for e in P.PRETRAINED.values()}) == 18
    assert len({e.url for e in P.PRETRAINED.values()}) == 18
    tags = [n.split(".", 1)[1] for n in names]
    assert tags.count("kinetics400") == 6
    assert tags.count("kinetics600") == 3
    assert sum(t.endswith("shot") and t != "zero_shot" for t in tags) == 8
    assert tags.count("zero_shot") == 1


def test_entries_consistent_with_architectures():
    for name, e in P.PRETRAINED.items():
        assert name == e.name == f"{e.arch}.{e.tag}"
        cfg = xclip.get_config(e.arch)  # registered
        assert (e.num_frames, e.image_size) == (cfg.num_frames, cfg.image_size), name
        pre = e.preprocess
        assert isinstance(pre, xclip.PreprocessConfig)
        assert (pre.num_frames, pre.image_size) == (cfg.num_frames, cfg.image_size)
        assert pre.mean == xclip.IMAGENET_MEAN and pre.std == xclip.IMAGENET_STD
        assert pre.resize_short == (384 if e.image_size == 336 else 256)


def test_urls_well_formed():
    for e in P.PRETRAINED.values():
        assert re.fullmatch(r"microsoft/xclip-(base|large)-patch(32|16|14)[a-z0-9-]*", e.hf_hub_id)
        if e.gdrive_id is None:
            assert e.url.startswith(
                "https://github.com/nbl97/X-CLIP_Model_Zoo/releases/download/v1.0/"
            )
            assert e.url.endswith(".pth") and e.filename == e.url.rsplit("/", 1)[1]
        else:
            assert e.arch.startswith("xclip_l14")  # only the L/14 models live on Google Drive
            assert e.gdrive_id in e.url and re.fullmatch(r"[\w-]{33}", e.gdrive_id)
        assert e.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", e.sha256)
        patch = xclip.get_config(e.arch).patch_size
        assert f"patch{patch}" in e.hf_hub_id


def test_reported_numbers():
    assert P.get_pretrained("xclip_b32_8f", "kinetics400").top1 == 80.4
    assert P.get_pretrained("xclip_l14_336_16f", "kinetics400").top5 == 97.4
    assert P.get_pretrained("xclip_l14_8f", "kinetics600").top1 == 88.3
    assert P.get_pretrained("xclip_b16_32f", "ucf_16shot").top1 == 91.4
    zs = P.get_pretrained("xclip_b16_32f", "zero_shot")
    assert zs.metrics["hmdb51_top1"] == 44.6 and zs.metrics["kinetics600_top5"] == 86.1
    for e in P.PRETRAINED.values():
        for v in [e.top1, e.top5, *e.metrics.values()]:
            assert v is None or 0 <= v <= 100


def test_list_by_arch():
    assert P.list_pretrained("xclip_b32_8f") == ["xclip_b32_8f.kinetics400"]
    assert len(P.list_pretrained("xclip_b16_32f")) == 9
    assert P.list_pretrained("xclip_test") == []
    with pytest.raises(ValueError, match="xclip_b32_8f"):
        P.list_pretrained("xclip_b32_8")


def test_get_pretrained_errors():
    assert P.get_pretrained("xclip_b16_32f.hmdb_2shot").tag == "hmdb_2shot"
    with pytest.raises(ValueError, match="ucf_8shot"):
        P.get_pretrained("xclip_b16_32f", "ucf_8shots")
    with pytest.raises(ValueError, match="kinetics400"):
        P.get_pretrained("xclip_b32_8f", "kinetics600")
    with pytest.raises(ValueError, match="no released weights"):
        P.get_pretrained("xclip_test", "kinetics400")
    with pytest.raises(ValueError, match="unknown model"):
        P.get_pretrained("xclip_b99", "kinetics400")


def test_pretrained_command(capsys):
    assert main(["pretrained"]) == 0
    out = capsys.readouterr().out
    for name in P.list_pretrained():
        assert name in out
    assert "microsoft/xclip-base-patch16-zero-shot" in out
    assert main(["pretrained", "--arch", "xclip_l14_8f"]) == 0
    out = capsys.readouterr().out
    assert "xclip_l14_8f.kinetics600" in out and "xclip_b32_8f" not in out
    assert main(["pretrained", "--arch", "nope"]) == 2


# ------------------------------------------------------------------------------------------------
# downloading: a stand-in Hugging Face hub (and GitHub) on 127.0.0.1


class StandInHub:
    """Serves ``/{repo}/resolve/{revision}/{file}`` with the headers ``huggingface_hub`` reads
    (``X-Repo-Commit``, ``ETag``, ``X-Error-Code``; ``Range`` for resumed downloads), and any
    other path from ``files`` (the GitHub release stand-in)."""

    def __init__(self):
        self.repos: dict[str, dict[str, bytes]] = {}
        self.commits: dict[str, str] = {}
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.fail_after: int | None = None  # GET bodies cut after this many bytes
        self.failures = 0  # how many more GET bodies to cut (then whole ones again)
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self._serve(body=False)

            def do_GET(self):
                self._serve(body=True)

            def _serve(self, body: bool):
                hub.requests.append(
                    (self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
                )
                m = re.fullmatch(r"/(\w+/[\w.-]+)/resolve/([\w.-]+)/([\w.-]+)", self.path)
                if m is None:
                    data = hub.files.get(self.path)
                    if data is None:
                        return self._error(404, None)
                    return self._send(data, body, {})
                repo, rev, name = m.groups()
                if repo not in hub.repos:
                    return self._error(401, "RepoNotFound")
                commit = hub.commits[repo]
                if rev not in ("main", commit):
                    return self._error(404, "RevisionNotFound")
                if name not in hub.repos[repo]:
                    return self._error(404, "EntryNotFound", commit)
                data = hub.repos[repo][name]
                etag = hashlib.sha256(data).hexdigest()
                self._send(data, body, {"X-Repo-Commit": commit, "ETag": f'"{etag}"'})

            def _send(self, data: bytes, body: bool, headers: dict[str, str]):
                start = 0
                rng = self.headers.get("Range")
                if rng and body:
                    start = int(re.match(r"bytes=(\d+)-", rng).group(1))
                self.send_response(206 if start else 200)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                if body:
                    out = data[start:]
                    cut = hub.fail_after is not None and hub.failures > 0
                    if cut:
                        hub.failures -= 1
                        out = out[: hub.fail_after]
                    self.wfile.write(out)
                    if cut:
                        self.close_connection = True

            def _error(self, code: int, error_code: str | None, commit: str | None = None):
                self.send_response(code)
                if error_code:
                    self.send_header("X-Error-Code", error_code)
                if commit:
                    self.send_header("X-Repo-Commit", commit)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add(self, repo: str, files: dict[str, bytes], commit: str = "a" * 40) -> None:
        self.repos[repo] = dict(files)
        self.commits[repo] = commit

    def gets(self, name: str) -> int:
        return sum(1 for m, p, _ in self.requests if m == "GET" and p.endswith("/" + name))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub(monkeypatch):
    h = StandInHub()
    monkeypatch.setenv("HF_ENDPOINT", h.url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    yield h
    h.close()


ENTRY = P.get_pretrained("xclip_b32_8f", "kinetics400")


def local(entry: P.PretrainedWeights, hub: StandInHub) -> P.PretrainedWeights:
    """``entry`` with its GitHub URL on the stand-in."""
    return dataclasses.replace(entry, url=f"{hub.url}/gh/{entry.filename}")


def test_download_from_hub_uses_the_hf_cache(hub, tmp_path):
    hub.add(ENTRY.hf_hub_id, {"model.safetensors": b"weights", "config.json": b"{}"})
    path = P.download_pretrained(ENTRY, cache_dir=tmp_path, progress=False)
    # the huggingface_hub cache layout: <cache>/hub/models--org--name/snapshots/<commit>/
    assert path == tmp_path / "hub/models--microsoft--xclip-base-patch32/snapshots" / ("a" * 40)
    assert (path / "model.safetensors").read_bytes() == b"weights"
    assert (path / "config.json").read_bytes() == b"{}"
    assert sorted(p.name for p in path.iterdir() if not kept_name(p.name)) == [
        "config.json",
        "model.safetensors",
    ]
    # the client identifies itself
    assert any("xclip" in h.get("user-agent", "") for _, _, h in hub.requests)
    # cache hit offline: no request at all
    n = len(hub.requests)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        assert P.download_pretrained(ENTRY, cache_dir=tmp_path, progress=False) == path
    assert len(hub.requests) == n


def test_default_cache_is_the_shared_hf_cache(hub, tmp_path, monkeypatch):
    """Without cache_dir the files land where transformers looks (HF_HUB_CACHE)."""
    import huggingface_hub

    hub.add(ENTRY.hf_hub_id, {"model.safetensors": b"w", "config.json": b"{}"})
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    path = P.download_pretrained(ENTRY, progress=True)  # with huggingface_hub's progress bar
    assert path.is_relative_to(tmp_path / "hf")
    P.clear_cache(ENTRY)
    assert not path.exists()


def test_pinned_revision_and_token_are_sent(hub, tmp_path):
    commit = "b" * 40
    hub.add(ENTRY.hf_hub_id, {"model.safetensors": b"w", "config.json": b"{}"}, commit=commit)
    entry = dataclasses.replace(ENTRY, hf_revision=commit)
    path = P.download_pretrained(entry, cache_dir=tmp_path, progress=False, token="hf_secret")
    assert path.name == commit
    paths = [p for _, p, _ in hub.requests]
    assert all(f"/resolve/{commit}/" in p for p in paths)
    assert all(h.get("authorization") == "Bearer hf_secret" for _, _, h in hub.requests)
    with pytest.raises(P.DownloadError, match="RevisionNotFound|Revision"):
        P.download_pretrained(local(entry, hub), cache_dir=tmp_path / "x", revision="v9")


def test_download_hub_falls_back_to_pytorch_bin(hub, tmp_path):
    hub.add(ENTRY.hf_hub_id, {"pytorch_model.bin": b"bin", "config.json": b"{}"})
    path = P.download_pretrained(ENTRY, cache_dir=tmp_path, progress=False)
    assert (path / "pytorch_model.bin").read_bytes() == b"bin"
    assert not (path / "model.safetensors").exists()


def test_interrupted_hub_download(hub, tmp_path):
    """A cut connection: huggingface_hub retries by itself; one that never completes is a
    DownloadError (after the GitHub fallback) and leaves nothing that looks complete."""
    data = bytes(range(256)) * 4096  # 1 MiB
    hub.add(ENTRY.hf_hub_id, {"model.safetensors": data, "config.json": b"{}"})
    hub.fail_after, hub.failures = 300_000, 100  # every body cut: the hub client gives up
    with pytest.raises(P.DownloadError, match="could not download"):
        P.download_pretrained(local(ENTRY, hub), cache_dir=tmp_path, progress=False)
    assert not list(tmp_path.rglob("model.safetensors"))
    hub.failures = 1  # one cut: the client's retry completes it within the call
    path = P.download_pretrained(ENTRY, cache_dir=tmp_path, progress=False)
    assert (path / "model.safetensors").read_bytes() == data


def test_download_falls_back_to_github(hub, tmp_path):
    entry = local(ENTRY, hub)  # no hub repo: 401 RepoNotFound, as the real hub answers
    hub.files[f"/gh/{entry.filename}"] = b"original pth"
    path = P.download_pretrained(entry, cache_dir=tmp_path, progress=False)
    assert path == tmp_path / "original" / "k400_32_8.pth"
    assert path.read_bytes() == b"original pth"
    # cache hit on the original file: no request
    n = len(hub.requests)
    assert P.download_pretrained(entry, cache_dir=tmp_path) == path
    assert len(hub.requests) == n


def test_download_unreachable_is_a_clear_error(tmp_path, monkeypatch):
    # fast: the refused connection is found before huggingface_hub retries it 5 times (~24 s)
    hub = StandInHub()
    url = hub.url
    hub.close()  # nothing listens there any more
    monkeypatch.setenv("HF_ENDPOINT", url)
    entry = dataclasses.replace(ENTRY, url=f"{url}/gh/{ENTRY.filename}")
    with pytest.raises(P.DownloadError) as e:
        P.download_pretrained(entry, cache_dir=tmp_path, progress=False)
    msg = str(e.value)
    assert "\n" not in msg
    assert f"could not download {ENTRY.name} from {url}/{ENTRY.hf_hub_id}" in msg
    assert f"could not download {ENTRY.name} from {entry.url}" in msg
    assert "download it manually" in msg and "xclip.load_model" in msg
    assert not any(p.is_file() for p in tmp_path.rglob("*"))  # nothing half-written left


def test_offline_without_cache_names_hf_hub_offline(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.add(ENTRY.hf_hub_id, {"model.safetensors": b"w", "config.json": b"{}"})
    entry = local(ENTRY, hub)
    hub.files[f"/gh/{entry.filename}"] = b"x"
    with pytest.raises(P.DownloadError, match="HF_HUB_OFFLINE is set"):
        P.download_pretrained(entry, cache_dir=tmp_path, progress=False)
    assert hub.requests == []  # offline means no request, not even to GitHub


def test_download_gdrive_entry_mentions_drive(hub, tmp_path):
    entry = P.get_pretrained("xclip_l14_8f", "kinetics400")
    with pytest.raises(P.DownloadError, match="Google Drive"):
        P.download_pretrained(entry, cache_dir=tmp_path, progress=False)
    assert not any("drive" in p for _, p, _ in hub.requests)


def test_checksum_mismatch_removes_file(hub, tmp_path):
    entry = dataclasses.replace(local(ENTRY, hub), sha256=hashlib.sha256(b"genuine").hexdigest())
    hub.files[f"/gh/{entry.filename}"] = b"tampered"
    with pytest.raises(P.DownloadError, match="checksum mismatch"):
        P.download_pretrained(entry, cache_dir=tmp_path, progress=False)
    assert not any(p.is_file() for p in tmp_path.rglob("*"))
    hub.files[f"/gh/{entry.filename}"] = b"genuine"
    path = P.download_pretrained(entry, cache_dir=tmp_path, progress=False)
    assert path.read_bytes() == b"genuine"


def test_interrupted_github_download_leaves_no_file(hub, tmp_path):
    entry = local(ENTRY, hub)
    hub.files[f"/gh/{entry.filename}"] = b"x" * 100_000
    hub.fail_after, hub.failures = 1000, 1
    with pytest.raises(P.DownloadError):
        P.download_pretrained(entry, cache_dir=tmp_path, progress=False)
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_cache_dir_from_environment(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("XCLIP_CACHE", str(tmp_path / "env-cache"))
    assert P.cache_root() == tmp_path / "env-cache"
    entry = local(ENTRY, hub)
    hub.files[f"/gh/{entry.filename}"] = b"x"
    path = P.download_pretrained(entry, progress=False)
    assert path.parent.parent == tmp_path / "env-cache"
    P.clear_cache(entry)
    assert not path.exists()
    monkeypatch.delenv("XCLIP_CACHE")
    assert P.cache_root() == Path.home() / ".cache" / "xclip"


def test_download_file_real_urllib_file_url(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"hello" * 1000)
    dest = tmp_path / "cache" / "dest.bin"
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    assert P.download_file(src.as_uri(), dest, sha256=sha, progress=False) == dest
    assert dest.read_bytes() == src.read_bytes()
    with pytest.raises(P.DownloadError):
        P.download_file(src.as_uri(), tmp_path / "other.bin", sha256="1" * 64, progress=False)
    assert not (tmp_path / "other.bin").exists()


def test_create_model_with_pretrained_tag(hub, tmp_path, monkeypatch):
    """factory.create_model("arch.tag") end to end from the stand-in hub (an xclip model
    directory, whose config.json load_model reads like a Hugging Face one)."""
    torch.manual_seed(0)
    ref = xclip.create_model("xclip_test")
    src = xclip.save_model(ref, tmp_path / "src")
    entry = dataclasses.replace(ENTRY, arch="xclip_test", tag="fake", num_frames=4, image_size=32)
    monkeypatch.setitem(P.PRETRAINED, entry.name, entry)
    hub.add(
        entry.hf_hub_id, {n: (src / n).read_bytes() for n in ("model.safetensors", "config.json")}
    )
    model = xclip.create_model("xclip_test.fake", cache_dir=tmp_path / "cache")
    assert model.cfg == ref.cfg
    assert model.preprocess == entry.preprocess
    for k, v in ref.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_load_original_pth_from_github_fallback(hub, tmp_path):
    """The GitHub fallback returns an original ``{"model": ...}`` .pth that load_model reads."""
    torch.manual_seed(0)
    ref = xclip.XCLIP(xclip.get_config("xclip_test").replace(vision_heads=1, text_heads=1))
    buf = io.BytesIO()
    torch.save({"model": ref.state_dict(), "epoch": 1}, buf)
    entry = local(ENTRY, hub)
    hub.files[f"/gh/{entry.filename}"] = buf.getvalue()
    path = P.download_pretrained(entry, cache_dir=tmp_path, progress=False)
    model = xclip.load_model(path)
    for k, v in ref.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
