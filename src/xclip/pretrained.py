"""The released X-CLIP weights as data, and their download through ``huggingface_hub``.

The references document **18** released checkpoints (the project issue says "17"; the table below
lists every one documented): 6 Kinetics-400 (B/32 8f and 16f, B/16 8f and 16f, L/14 8f,
L/14@336 16f), 3 Kinetics-600 (B/16 8f and 16f, L/14 8f), 8 few-shot (B/16 32f; HMDB-51 and UCF-101
with K = 2, 4, 8, 16) and 1 zero-shot (B/16 32f, trained on Kinetics-400). Every one has a Hugging
Face hub copy (``microsoft/xclip-*``); the original files are GitHub release assets
(``nbl97/X-CLIP_Model_Zoo``), except the three L/14 models, which are on Google Drive.

>>> import xclip.pretrained as P
>>> P.list_pretrained("xclip_b32_8f")
['xclip_b32_8f.kinetics400']
>>> P.get_pretrained("xclip_b16_32f", "zero_shot").hf_hub_id
'microsoft/xclip-base-patch16-zero-shot'

Hub copies are fetched with :func:`huggingface_hub.hf_hub_download`, so they share the Hugging
Face cache (``HF_HOME``/``HF_HUB_CACHE``) with transformers and open_clip, honour
``HF_HUB_OFFLINE=1``, ``HF_TOKEN`` and ``HF_ENDPOINT``, and resume interrupted downloads. If the hub
cannot give them, the original GitHub release file is downloaded into ``$XCLIP_CACHE/original``
(default ``~/.cache/xclip``), written atomically. Checksums: an entry's ``sha256`` is verified
when recorded, but **no entry records one today** (the authors publish none); hub files are
identified by commit and ETag, as ``huggingface_hub`` does for every model.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import constants as hf_constants
from huggingface_hub import hf_hub_download, scan_cache_dir
from huggingface_hub.errors import CacheNotFound, EntryNotFoundError, HfHubHTTPError
from tqdm import tqdm

from xclip.errors import InputError

from .atomic import atomic_write
from .checkpoint import CheckpointError
from .config import IMAGENET_MEAN, IMAGENET_STD, PreprocessConfig, get_config, unknown_name_error
from .paper import (
    PAPER_FEWSHOT_HMDB,
    PAPER_FEWSHOT_UCF,
    PAPER_GFLOPS,
    PAPER_KINETICS400,
    PAPER_KINETICS600,
    PAPER_ZEROSHOT_K600_TOP5,
    PAPER_ZEROSHOT_TOP1,
)

GITHUB_URL = "https://github.com/nbl97/X-CLIP_Model_Zoo/releases/download/v1.0/{file}"
GDRIVE_URL = "https://drive.google.com/uc?export=download&id={id}"
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
HF_CONFIG_FILE = "config.json"
_CHUNK = 1 << 20
# The transport errors of the HTTP client huggingface_hub uses (httpx in 1.x, httpx2 in 2.x): a
# connection cut mid-download after its own retries. HfHubHTTPError derives from that client's
# HTTPError, so it names the class without importing a dependency of a dependency.
_HUB_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = tuple(
    c for c in HfHubHTTPError.__mro__[1:] if c.__name__ == "HTTPError"
)


@dataclass(frozen=True)
class PretrainedWeights:
    """One released X-CLIP checkpoint.

    ``top1``/``top5`` are the reported accuracies on ``eval_protocol`` (``None`` where not
    reported); ``metrics`` holds every reported number (e.g. the zero-shot model's three datasets).
    These and ``gflops`` are the paper's figures for this very checkpoint, read from
    :mod:`xclip.paper`.
    ``sha256`` is the checksum of the file downloaded from ``url`` (``None``: not published,
    which is the case for every entry today). ``hf_revision`` pins the hub copy to a commit
    (``None``: the ``main`` branch).
    """

    arch: str
    tag: str
    hf_hub_id: str
    url: str
    num_frames: int
    image_size: int
    train_dataset: str
    label_set: str
    top1: float | None
    top5: float | None
    eval_protocol: str
    gflops: int
    metrics: dict[str, float] = field(default_factory=dict)
    gdrive_id: str | None = None
    sha256: str | None = None
    hf_revision: str | None = None
    notes: str = ""

    @property
    def name(self) -> str:
        return f"{self.arch}.{self.tag}"

    @property
    def filename(self) -> str:
        """The original checkpoint's file name (``k400_32_8.pth``) or the Google Drive id."""
        return self.url.rsplit("/", 1)[-1] if self.gdrive_id is None else f"{self.gdrive_id}.pth"

    @property
    def preprocess(self) -> PreprocessConfig:
        """Evaluation preprocessing: short side ``int(256/224*size)`` (384 for 336 px), centre
        crop, ImageNet mean/std, as the original's single-view test pipeline."""
        return PreprocessConfig(
            num_frames=self.num_frames,
            image_size=self.image_size,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            resize_short=int(256 / 224 * self.image_size),
        )


def _github(file: str) -> str:
    return GITHUB_URL.format(file=file)


def _gdrive(file_id: str) -> str:
    return GDRIVE_URL.format(id=file_id)


_K400 = "Kinetics-400 val, 4x3 views"
_K600 = "Kinetics-600 val, 4x3 views"
_L14_NOTE = (
    "Hosted on Google Drive (no scripted download); the hub copy's config.json may set MIT/prompt "
    "heads to 8 where the original uses width//64 = 12."
)


def _kinetics(
    arch: str,
    tag: str,
    hub: str,
    url: str,
    frames: int,
    size: int,
    gdrive: str | None = None,
    notes: str = "",
) -> PretrainedWeights:
    dataset = "kinetics400" if tag == "kinetics400" else "kinetics600"
    top1, top5 = (PAPER_KINETICS400 if dataset == "kinetics400" else PAPER_KINETICS600)[arch]
    return PretrainedWeights(
        arch=arch,
        tag=tag,
        hf_hub_id=f"microsoft/{hub}",
        url=url,
        num_frames=frames,
        image_size=size,
        train_dataset=dataset,
        label_set=dataset,
        top1=top1,
        top5=top5,
        eval_protocol=_K400 if dataset == "kinetics400" else _K600,
        gflops=PAPER_GFLOPS[arch],
        metrics={f"{dataset}_top1": top1, f"{dataset}_top5": top5},
        gdrive_id=gdrive,
        notes=notes,
    )


def _few_shot(dataset: str, shots: int, top1: float) -> PretrainedWeights:
    label_set = {"hmdb": "hmdb51", "ucf": "ucf101"}[dataset]
    return PretrainedWeights(
        arch="xclip_b16_32f",
        tag=f"{dataset}_{shots}shot",
        hf_hub_id=f"microsoft/xclip-base-patch16-{dataset}-{shots}-shot",
        url=_github(f"few_{dataset}_{shots}.pth"),
        num_frames=32,
        image_size=224,
        train_dataset=f"{label_set} ({shots}-shot)",
        label_set=label_set,
        top1=top1,
        top5=None,
        eval_protocol=f"{label_set.upper()} split-1 test, single view",
        gflops=PAPER_GFLOPS["xclip_b16_32f"],
        metrics={f"{label_set}_top1": top1},
    )


def _zero_shot_metrics() -> dict[str, float]:
    """Tables 3 and 4 of the paper as ``{dataset}_top1``/``_top1_std`` (and K600 top-5) metrics."""
    keys = {"HMDB-51": "hmdb51", "UCF-101": "ucf101", "K600": "kinetics600"}
    metrics: dict[str, float] = {}
    for name, (mean, std) in PAPER_ZEROSHOT_TOP1.items():
        metrics[f"{keys[name]}_top1"] = mean
        metrics[f"{keys[name]}_top1_std"] = std
    metrics["kinetics600_top5"], metrics["kinetics600_top5_std"] = PAPER_ZEROSHOT_K600_TOP5
    return metrics


# fmt: off
_ENTRIES: list[PretrainedWeights] = [
    # Kinetics-400, fully supervised (top-5 of B/16 8f: README 95.7, paper 96.7; the paper's is used)
    _kinetics("xclip_b32_8f", "kinetics400", "xclip-base-patch32", _github("k400_32_8.pth"), 8, 224),
    _kinetics("xclip_b32_16f", "kinetics400", "xclip-base-patch32-16-frames", _github("k400_32_16.pth"), 16, 224),
    _kinetics("xclip_b16_8f", "kinetics400", "xclip-base-patch16", _github("k400_16_8.pth"), 8, 224,
              notes="top-5 is 96.7 in the paper, 95.7 in the original README"),
    _kinetics("xclip_b16_16f", "kinetics400", "xclip-base-patch16-16-frames", _github("k400_16_16.pth"), 16, 224),
    _kinetics("xclip_l14_8f", "kinetics400", "xclip-large-patch14", _gdrive("1NUOImq0o5DlQTST17iIP3vG7DgmHQuCx"), 8, 224,
              gdrive="1NUOImq0o5DlQTST17iIP3vG7DgmHQuCx", notes=_L14_NOTE),
    _kinetics("xclip_l14_336_16f", "kinetics400", "xclip-large-patch14-16-frames", _gdrive("1FOYgnJc097OJ4lGwtRCCydQyVPJEOH7d"), 16, 336,
              gdrive="1FOYgnJc097OJ4lGwtRCCydQyVPJEOH7d", notes=_L14_NOTE),
    # Kinetics-600, fully supervised
    _kinetics("xclip_b16_8f", "kinetics600", "xclip-base-patch16-kinetics-600", _github("k600_16_8.pth"), 8, 224),
    _kinetics("xclip_b16_16f", "kinetics600", "xclip-base-patch16-kinetics-600-16-frames", _github("k600_16_16.pth"), 16, 224),
    _kinetics("xclip_l14_8f", "kinetics600", "xclip-large-patch14-kinetics-600", _gdrive("1FV8C1INuM91sLAN4ImjzePLIlpMSihwV"), 8, 224,
              gdrive="1FV8C1INuM91sLAN4ImjzePLIlpMSihwV", notes=_L14_NOTE),
    # Few-shot (B/16 32f from image CLIP, K videos per class)
    *(_few_shot("hmdb", k, acc) for k, acc in PAPER_FEWSHOT_HMDB.items()),
    *(_few_shot("ucf", k, acc) for k, acc in PAPER_FEWSHOT_UCF.items()),
    # Zero-shot (B/16 32f, 10 epochs on K400 with the text frozen; mean +- std over 3 splits/subsets)
    PretrainedWeights(
        arch="xclip_b16_32f",
        tag="zero_shot",
        hf_hub_id="microsoft/xclip-base-patch16-zero-shot",
        url=_github("zero.pth"),
        num_frames=32,
        image_size=224,
        train_dataset="kinetics400",
        label_set="any (open vocabulary)",
        top1=None,
        top5=None,
        eval_protocol="zero-shot, single view: HMDB-51/UCF-101 3 test splits, K600 3 subsets of 160 new classes",
        gflops=PAPER_GFLOPS["xclip_b16_32f"],
        metrics=_zero_shot_metrics(),
        notes="recommended by the authors for open-set / custom-category inference",
    ),
]
# fmt: on

PRETRAINED: dict[str, PretrainedWeights] = {e.name: e for e in _ENTRIES}


def list_pretrained(arch: str | None = None) -> list[str]:
    """Names ``"arch.tag"`` of the released weights (of one architecture if ``arch`` is given)."""
    if arch is not None:
        get_config(arch)  # unknown architecture -> ValueError with suggestions
    return [n for n, e in PRETRAINED.items() if arch is None or e.arch == arch]


def get_pretrained(arch: str, tag: str | None = None) -> PretrainedWeights:
    """The :class:`PretrainedWeights` of ``arch``/``tag`` (or one ``"arch.tag"`` string)."""
    if tag is None:
        if "." not in arch:
            raise unknown_name_error("pretrained weights", arch, list_pretrained())
        arch, tag = arch.split(".", 1)
    entry = PRETRAINED.get(f"{arch}.{tag}")
    if entry is None:
        get_config(arch)
        tags = [e.tag for e in _ENTRIES if e.arch == arch]
        if not tags:
            raise InputError(
                f"no released weights for architecture {arch!r}; architectures with weights: "
                f"{', '.join(sorted({e.arch for e in _ENTRIES}))}"
            )
        raise unknown_name_error(f"pretrained tag of {arch}", tag, tags)
    return entry


# downloading ---------------------------------------------------------------------------------


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """Where the GitHub fallback files go: ``cache_dir``, ``$XCLIP_CACHE`` or ``~/.cache/xclip``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("XCLIP_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "xclip"


class DownloadError(CheckpointError):
    """A file could not be downloaded; the message says how to get it manually."""


def _urlopen(url: str, timeout: float = 60.0):
    req = urllib.request.Request(url, headers={"User-Agent": "xclip"})
    return urllib.request.urlopen(req, timeout=timeout)


def download_file(
    url: str, dest: Path, *, sha256: str | None = None, progress: bool = True
) -> Path:
    """Download ``url`` to ``dest`` atomically (temp file + rename), verifying ``sha256`` if given.

    Raises :class:`urllib.error.URLError`/``OSError`` for network failures, including a body
    shorter than its ``Content-Length`` (callers turn these into a clear message) and :class:`DownloadError` on a checksum mismatch (nothing is kept).
    """

    def write(tmp: str) -> None:
        with _urlopen(url) as resp, open(tmp, "wb") as f:
            total = resp.headers.get("Content-Length") if getattr(resp, "headers", None) else None
            bar = None
            if progress:
                bar = tqdm(
                    total=int(total) if total else None,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=dest.name,
                    leave=False,
                )
            h = hashlib.sha256()
            received = 0
            try:
                while chunk := resp.read(_CHUNK):
                    f.write(chunk)
                    h.update(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
        if total and received != int(total):
            # urllib returns a body cut by a closed connection as if it were complete
            raise ConnectionError(f"the connection closed after {received} of {total} bytes")
        if sha256 is not None and h.hexdigest() != sha256.lower():
            raise DownloadError(
                f"checksum mismatch for {url}: expected sha256 {sha256}, got {h.hexdigest()}; "
                f"the download was discarded (a corrupted or changed file). Try again, or download "
                f"it manually and pass the path to xclip.load_model"
            )

    atomic_write(dest, write)
    return dest


class _SilentTqdm(tqdm):
    """The progress bar ``huggingface_hub`` draws, switched off (``progress=False``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["disable"] = True
        super().__init__(*args, **kwargs)


def _offline() -> bool:
    """``HF_HUB_OFFLINE`` as ``huggingface_hub`` reads it, also when set after its import."""
    value = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    return hf_constants.HF_HUB_OFFLINE or value in {"1", "ON", "YES", "TRUE"}


def _download_hf(
    entry: PretrainedWeights,
    cache_dir: Path | None,
    *,
    revision: str | None,
    token: bool | str | None,
    progress: bool,
    local_only: bool = False,
) -> Path:
    """``config.json`` + the first weights file the hub repo has; returns their snapshot folder
    (``local_only``: from the cache only, as ``HF_HUB_OFFLINE``).

    Both files come from one commit: the weights are fetched first and ``config.json`` at the
    commit they came from, so a repository that changes between the two calls never mixes.
    """
    kwargs: dict[str, Any] = {
        "cache_dir": None if cache_dir is None else str(cache_dir),
        "token": token,
        # read per call: HF_ENDPOINT set after huggingface_hub was imported still counts
        "endpoint": os.environ.get("HF_ENDPOINT") or None,
        "local_files_only": local_only or _offline(),
        "library_name": "xclip",
        "tqdm_class": None if progress else _SilentTqdm,
    }
    rev = revision or entry.hf_revision
    weights: Path | None = None
    missing: list[str] = []
    for name in HF_WEIGHT_FILES:
        try:
            weights = Path(hf_hub_download(entry.hf_hub_id, name, revision=rev, **kwargs))
            break
        except EntryNotFoundError as e:
            if isinstance(e, FileNotFoundError):
                raise  # LocalEntryNotFoundError: offline or unreachable, not a missing file
            missing.append(name)  # the repo exists and lacks this file: try the next one
    if weights is None:
        raise FileNotFoundError(f"the hub repo has none of {', '.join(missing)}")
    commit = weights.parent.name  # snapshots/<commit>/<file>
    config = Path(hf_hub_download(entry.hf_hub_id, HF_CONFIG_FILE, revision=commit, **kwargs))
    if config.parent != weights.parent:  # a pinned commit always shares one snapshot folder
        raise DownloadError(
            f"{entry.hf_hub_id}: {HF_CONFIG_FILE} and the weights came from different snapshots "
            f"({config.parent} and {weights.parent}); pass revision= a commit of that repo"
        )
    return weights.parent


# How long the reachability check waits for a TCP connection: a dropped-packet network fails
# in this time instead of huggingface_hub's five retries with backoff (about 25 s).
CONNECT_TIMEOUT = 3.0


def _unreachable(url: str, timeout: float = CONNECT_TIMEOUT) -> str | None:
    """Why the host of ``url`` cannot be reached (its name does not resolve, or no TCP
    connection opens within ``timeout``), or ``None`` when it can; no HTTP request is made.
    Behind a proxy (``HTTPS_PROXY``, ...) nothing is checked: the proxy may reach what this
    machine cannot resolve."""
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname or urllib.request.getproxies().get(parts.scheme):
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return None
    except socket.gaierror as e:
        return f"no network (cannot resolve {parts.hostname}: {e.strerror or e})"
    except OSError as e:
        return f"cannot connect to {parts.hostname}:{port} ({e.strerror or e or 'timed out'})"


def _hub_url(entry: PretrainedWeights) -> str:
    endpoint = os.environ.get("HF_ENDPOINT") or hf_constants.ENDPOINT
    return f"{endpoint.rstrip('/')}/{entry.hf_hub_id}"


def _reason(err: BaseException) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return str(err.reason)
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}".rstrip(": ")


def download_pretrained(
    entry: PretrainedWeights | str,
    cache_dir: str | Path | None = None,
    *,
    progress: bool = True,
    revision: str | None = None,
    token: bool | str | None = None,
) -> Path:
    """Download (once) and return a path :func:`xclip.load_model` reads.

    First the Hugging Face hub copy (``config.json`` + ``model.safetensors`` or
    ``pytorch_model.bin``) through :func:`huggingface_hub.hf_hub_download`: the shared HF cache
    (or ``cache_dir``), ``HF_HUB_OFFLINE``, ``HF_ENDPOINT``, the token of ``huggingface-cli login``
    or ``HF_TOKEN`` (or ``token``), resumed downloads; returns the snapshot folder. ``revision``
    pins a branch, tag or commit (default: ``entry.hf_revision``, else ``main``).

    If the hub cannot give the files, the original GitHub release ``.pth`` (verified against
    ``entry.sha256`` when recorded; none is today), cached as ``<cache>/original/<file>`` with
    ``<cache>`` = ``cache_dir``, ``$XCLIP_CACHE`` or ``~/.cache/xclip``; returns the file.
    A cached file is returned without network access. Failing both: :class:`DownloadError`
    naming each source and how to download by hand.
    """
    if isinstance(entry, str):
        entry = get_pretrained(entry)
    original = cache_root(cache_dir) / "original" / entry.filename
    if original.is_file():
        return original
    errors: list[str] = []
    hub_dir = None if cache_dir is None else Path(cache_dir).expanduser() / "hub"
    # offline: the cache only; online: a host that cannot be reached fails in seconds, not
    # after huggingface_hub's retries (a cached snapshot is still found with local_files_only)
    unreachable = None if _offline() else _unreachable(_hub_url(entry))
    try:
        return _download_hf(
            entry, hub_dir, revision=revision, token=token, progress=progress,
            local_only=unreachable is not None,
        )  # fmt: skip
    except DownloadError:
        raise
    except (OSError, EntryNotFoundError, ValueError, *_HUB_TRANSPORT_ERRORS) as e:
        # hub answers (404, 401, offline and not cached) are OSError subclasses
        why = unreachable or _reason(e)
        if _offline():
            why = "HF_HUB_OFFLINE is set and the files are not in the cache (unset it to download)"
        errors.append(f"could not download {entry.name} from {_hub_url(entry)}: {why}")
    if _offline():
        pass  # the cache only: no request to GitHub either
    elif entry.gdrive_id is None:
        try:
            unreachable = _unreachable(entry.url)
            if unreachable:
                raise ConnectionError(unreachable)
            return download_file(entry.url, original, sha256=entry.sha256, progress=progress)
        except DownloadError:
            raise
        except (urllib.error.URLError, OSError, ValueError) as e:
            why = unreachable or _reason(e)
            errors.append(f"could not download {entry.name} from {entry.url}: {why}")
    else:
        errors.append(f"the original file is on Google Drive: {entry.url}")
    raise DownloadError(
        "; ".join(errors) + f"; download it manually (the hub repo {_hub_url(entry)} or "
        f"{entry.url}) and pass the path to xclip.load_model (on the command line: --model PATH)"
    )


def clear_cache(entry: PretrainedWeights | str, cache_dir: str | Path | None = None) -> None:
    """Delete the cached files of ``entry``: its GitHub fallback file, and its hub copy in the
    Hugging Face cache (``cache_dir/hub`` when ``cache_dir`` is given)."""
    if isinstance(entry, str):
        entry = get_pretrained(entry)
    (cache_root(cache_dir) / "original" / entry.filename).unlink(missing_ok=True)
    hub_dir = (
        Path(hf_constants.HF_HUB_CACHE)
        if cache_dir is None
        else Path(cache_dir).expanduser() / "hub"
    )
    try:
        info = scan_cache_dir(hub_dir)
    except CacheNotFound:
        return
    for repo in info.repos:
        if repo.repo_id == entry.hf_hub_id and repo.repo_type == "model":
            shutil.rmtree(repo.repo_path, ignore_errors=True)
