"""The released X-CLIP weights as data, and a dependency-free downloader with a checksummed cache.

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

Downloads go to ``$XCLIP_CACHE`` (default ``~/.cache/xclip``); each file is written atomically, so an
interrupted download never leaves a partial file that looks complete, and the next call starts it
again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

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

HF_URL = "https://huggingface.co/{repo}/resolve/main/{file}"
GITHUB_URL = "https://github.com/nbl97/X-CLIP_Model_Zoo/releases/download/v1.0/{file}"
GDRIVE_URL = "https://drive.google.com/uc?export=download&id={id}"
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
HF_CONFIG_FILE = "config.json"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class PretrainedWeights:
    """One released X-CLIP checkpoint.

    ``top1``/``top5`` are the reported accuracies on ``eval_protocol`` (``None`` where not
    reported); ``metrics`` holds every reported number (e.g. the zero-shot model's three datasets).
    These and ``gflops`` are the paper's figures for this very checkpoint, read from
    :mod:`xclip.paper`.
    ``sha256`` is the checksum of the file downloaded from ``url`` (``None``: not published).
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
    hf_sha256: dict[str, str] = field(default_factory=dict)
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
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("XCLIP_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "xclip"


class DownloadError(CheckpointError):
    """A file could not be downloaded; the message says how to get it manually."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _urlopen(url: str, timeout: float = 60.0):
    req = urllib.request.Request(url, headers={"User-Agent": "xclip"})
    return urllib.request.urlopen(req, timeout=timeout)


def download_file(
    url: str, dest: Path, *, sha256: str | None = None, progress: bool = True
) -> Path:
    """Download ``url`` to ``dest`` atomically (temp file + rename), verifying ``sha256`` if given.

    Raises :class:`urllib.error.URLError`/``OSError`` for network failures (callers turn these into
    a clear message) and :class:`DownloadError` on a checksum mismatch (nothing is kept).
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
            try:
                while chunk := resp.read(_CHUNK):
                    f.write(chunk)
                    h.update(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
        if sha256 is not None and h.hexdigest() != sha256.lower():
            raise DownloadError(
                f"checksum mismatch for {url}: expected sha256 {sha256}, got {h.hexdigest()}; "
                f"the download was discarded (a corrupted or changed file). Try again, or download "
                f"it manually and pass the path to xclip.load_model"
            )

    atomic_write(dest, write)
    return dest


def _is_not_found(err: BaseException) -> bool:
    return isinstance(err, urllib.error.HTTPError) and err.code in (401, 403, 404)


def _download_hf(entry: PretrainedWeights, folder: Path, progress: bool) -> Path:
    """``config.json`` + the first weights file the hub repo has into ``folder``.

    Files already complete in ``folder`` are kept (each was written atomically), so a download
    interrupted between the two files only fetches the missing one next time.
    """
    have_weights = any((folder / name).is_file() for name in HF_WEIGHT_FILES)
    if not have_weights:
        last: BaseException | None = None
        for name in HF_WEIGHT_FILES:
            url = HF_URL.format(repo=entry.hf_hub_id, file=name)
            try:
                download_file(
                    url, folder / name, sha256=entry.hf_sha256.get(name), progress=progress
                )
                break
            except urllib.error.HTTPError as e:
                last = e
                if not _is_not_found(e):
                    raise
        else:
            assert last is not None
            raise last
    if not (folder / HF_CONFIG_FILE).is_file():
        download_file(
            HF_URL.format(repo=entry.hf_hub_id, file=HF_CONFIG_FILE),
            folder / HF_CONFIG_FILE,
            sha256=entry.hf_sha256.get(HF_CONFIG_FILE),
            progress=False,
        )
    return folder


def _reason(err: BaseException) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return str(err.reason)
    return f"{type(err).__name__}: {err}"


def download_pretrained(
    entry: PretrainedWeights | str,
    cache_dir: str | Path | None = None,
    *,
    progress: bool = True,
) -> Path:
    """Download (once) and return a path :func:`xclip.load_model` reads.

    Tries the Hugging Face hub copy (``config.json`` + ``model.safetensors`` or
    ``pytorch_model.bin`` over plain HTTPS, no ``huggingface_hub`` needed) and returns its
    directory; if the hub is unreachable, the original GitHub release ``.pth`` (verified against
    ``entry.sha256`` when known) and returns the file. Cached under ``$XCLIP_CACHE`` or
    ``~/.cache/xclip``; a cached file is returned without network access.
    """
    if isinstance(entry, str):
        entry = get_pretrained(entry)
    root = cache_root(cache_dir)
    hf_dir = root / entry.name
    original = root / "original" / entry.filename
    if original.is_file():
        return original
    errors: list[str] = []
    try:
        return _download_hf(entry, hf_dir, progress)
    except DownloadError:
        raise
    except (urllib.error.URLError, OSError, ValueError) as e:
        errors.append(
            f"could not download {entry.name} from {HF_URL.format(repo=entry.hf_hub_id, file='')}: {_reason(e)}"
        )
    if entry.gdrive_id is None:
        try:
            return download_file(entry.url, original, sha256=entry.sha256, progress=progress)
        except DownloadError:
            raise
        except (urllib.error.URLError, OSError, ValueError) as e:
            errors.append(f"could not download {entry.name} from {entry.url}: {_reason(e)}")
    else:
        errors.append(f"the original file is on Google Drive: {entry.url}")
    raise DownloadError(
        "; ".join(errors)
        + f"; download it manually (the hub repo https://huggingface.co/{entry.hf_hub_id} or "
        f"{entry.url}) and pass the path to xclip.load_model"
    )


def clear_cache(entry: PretrainedWeights | str, cache_dir: str | Path | None = None) -> None:
    """Delete the cached files of ``entry``."""
    if isinstance(entry, str):
        entry = get_pretrained(entry)
    root = cache_root(cache_dir)
    shutil.rmtree(root / entry.name, ignore_errors=True)
    (root / "original" / entry.filename).unlink(missing_ok=True)
