"""The released-weights table and the downloader (never touches the network)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import urllib.error
from pathlib import Path

import pytest
import torch

import xclip
import xclip.pretrained as P
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
# downloading (a fake opener serves URLs from a dict; anything else is "offline")


class FakeWeb:
    def __init__(self, files: dict[str, bytes] | None = None, offline: bool = False):
        self.files = dict(files or {})
        self.offline = offline
        self.requests: list[str] = []

    def __call__(self, url: str, timeout: float = 60.0):
        self.requests.append(url)
        if self.offline:
            raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
        if url not in self.files:
            raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)
        data = self.files[url]
        resp = io.BytesIO(data)
        resp.headers = {"Content-Length": str(len(data))}
        return resp


@pytest.fixture
def web(monkeypatch):
    fake = FakeWeb()
    monkeypatch.setattr(P, "_urlopen", fake)
    return fake


def hf(entry, file):
    return P.HF_URL.format(repo=entry.hf_hub_id, file=file)


ENTRY = P.get_pretrained("xclip_b32_8f", "kinetics400")


def test_download_from_hub(web, tmp_path):
    web.files[hf(ENTRY, "model.safetensors")] = b"weights"
    web.files[hf(ENTRY, "config.json")] = b"{}"
    path = P.download_pretrained(ENTRY, cache_dir=tmp_path, progress=False)
    assert path == tmp_path / "xclip_b32_8f.kinetics400" and path.is_dir()
    assert (path / "model.safetensors").read_bytes() == b"weights"
    assert (path / "config.json").read_bytes() == b"{}"
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    # cache hit: no request at all
    web.offline = True
    n = len(web.requests)
    assert P.download_pretrained(ENTRY, cache_dir=tmp_path) == path
    assert len(web.requests) == n


def test_download_resumes_after_partial_hub_download(web, tmp_path):
    web.files[hf(ENTRY, "model.safetensors")] = b"weights"  # config.json missing: 404
    with pytest.raises(P.DownloadError):
        P.download_pretrained(ENTRY, cache_dir=tmp_path, progress=False)
    folder = tmp_path / "xclip_b32_8f.kinetics400"
    assert (folder / "model.safetensors").is_file() and not (folder / "config.json").exists()
    web.files[hf(ENTRY, "config.json")] = b"{}"
    web.requests.clear()
    assert P.download_pretrained(ENTRY, cache_dir=tmp_path, progress=False) == folder
    assert web.requests == [hf(ENTRY, "config.json")]  # the weights were not fetched again


def test_download_hub_falls_back_to_pytorch_bin(web, tmp_path):
    web.files[hf(ENTRY, "pytorch_model.bin")] = b"bin"
    web.files[hf(ENTRY, "config.json")] = b"{}"
    path = P.download_pretrained(ENTRY, cache_dir=tmp_path, progress=True)  # with a tqdm bar
    assert (path / "pytorch_model.bin").read_bytes() == b"bin"
    assert not (path / "model.safetensors").exists()


def test_download_falls_back_to_github(web, tmp_path):
    web.files[ENTRY.url] = b"original pth"
    path = P.download_pretrained(ENTRY, cache_dir=tmp_path, progress=False)
    assert path == tmp_path / "original" / "k400_32_8.pth"
    assert path.read_bytes() == b"original pth"
    # cache hit on the original file
    web.offline = True
    assert P.download_pretrained(ENTRY, cache_dir=tmp_path) == path


def test_download_offline_is_a_clear_error(web, tmp_path):
    web.offline = True
    with pytest.raises(P.DownloadError) as e:
        P.download_pretrained(ENTRY, cache_dir=tmp_path, progress=False)
    msg = str(e.value)
    assert "could not download xclip_b32_8f.kinetics400 from" in msg
    assert ENTRY.url in msg and "huggingface.co/microsoft/xclip-base-patch32" in msg
    assert "name resolution" in msg
    assert "download it manually" in msg and "xclip.load_model" in msg
    assert not any(p.is_file() for p in tmp_path.rglob("*"))  # nothing half-written left


def test_download_gdrive_entry_offline_mentions_drive(web, tmp_path):
    web.offline = True
    entry = P.get_pretrained("xclip_l14_8f", "kinetics400")
    with pytest.raises(P.DownloadError, match="Google Drive"):
        P.download_pretrained(entry, cache_dir=tmp_path, progress=False)
    assert not any("drive.google" in u for u in web.requests)


def test_checksum_mismatch_removes_file(web, tmp_path):
    data = b"tampered"
    entry = dataclasses.replace(ENTRY, sha256=hashlib.sha256(b"genuine").hexdigest())
    web.files[entry.url] = data
    with pytest.raises(P.DownloadError, match="checksum mismatch"):
        P.download_pretrained(entry, cache_dir=tmp_path, progress=False)
    assert not any(p.is_file() for p in tmp_path.rglob("*"))
    # the right bytes pass
    web.files[entry.url] = b"genuine"
    path = P.download_pretrained(entry, cache_dir=tmp_path, progress=False)
    assert path.read_bytes() == b"genuine"


def test_hub_checksum_mismatch(web, tmp_path):
    entry = dataclasses.replace(ENTRY, hf_sha256={"model.safetensors": "0" * 64})
    web.files[hf(entry, "model.safetensors")] = b"weights"
    web.files[hf(entry, "config.json")] = b"{}"
    with pytest.raises(P.DownloadError, match="checksum mismatch"):
        P.download_pretrained(entry, cache_dir=tmp_path, progress=False)
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_interrupted_download_leaves_no_file(monkeypatch, tmp_path):
    class Broken(io.BytesIO):
        headers = {"Content-Length": "100"}

        def read(self, n=-1):
            raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr(P, "_urlopen", lambda url, timeout=60.0: Broken())
    with pytest.raises(P.DownloadError, match="connection reset"):
        P.download_pretrained(ENTRY, cache_dir=tmp_path, progress=False)
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_cache_dir_from_environment(web, tmp_path, monkeypatch):
    monkeypatch.setenv("XCLIP_CACHE", str(tmp_path / "env-cache"))
    assert P.cache_root() == tmp_path / "env-cache"
    web.files[ENTRY.url] = b"x"
    path = P.download_pretrained("xclip_b32_8f.kinetics400", progress=False)
    assert path.parent.parent == tmp_path / "env-cache"
    P.clear_cache(ENTRY)
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


def test_create_model_with_pretrained_tag(web, tmp_path, monkeypatch):
    """factory.create_model("arch.tag") end to end: the hub files are served by the fake web (here
    an xclip model directory, whose config.json load_model reads like a Hugging Face one)."""
    torch.manual_seed(0)
    ref = xclip.create_model("xclip_test")
    src = xclip.save_model(ref, tmp_path / "src")
    entry = dataclasses.replace(ENTRY, arch="xclip_test", tag="fake", num_frames=4, image_size=32)
    monkeypatch.setitem(P.PRETRAINED, entry.name, entry)
    for name in ("model.safetensors", "config.json"):
        web.files[hf(entry, name)] = (src / name).read_bytes()
    model = xclip.create_model("xclip_test.fake", cache_dir=tmp_path / "cache")
    assert model.cfg == ref.cfg
    assert model.preprocess == entry.preprocess
    for k, v in ref.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_load_original_pth_from_github_fallback(web, tmp_path):
    """The GitHub fallback returns an original ``{"model": ...}`` .pth that load_model reads."""
    torch.manual_seed(0)
    ref = xclip.XCLIP(xclip.get_config("xclip_test").replace(vision_heads=1, text_heads=1))
    buf = io.BytesIO()
    torch.save({"model": ref.state_dict(), "epoch": 1}, buf)
    web.files[ENTRY.url] = buf.getvalue()
    path = P.download_pretrained(ENTRY, cache_dir=tmp_path, progress=False)
    model = xclip.load_model(path)
    for k, v in ref.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
