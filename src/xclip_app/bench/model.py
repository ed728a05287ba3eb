"""The model benchmark: forward latency/throughput of xclip against ``transformers.XCLIPModel``
holding the same weights (``xclip-video bench model``).

:func:`build_pair` builds ``transformers.XCLIPModel`` with random weights, saves it with
``save_pretrained`` and loads the *same* weights into xclip with ``xclip.load_model``. Then, in one
process and interleaved (every repeat times each configuration once, so a noisy neighbour hits all
of them alike), :func:`bench_model` times:

* ours, text features cached (``model.encode_text`` once, then ``model(video, text_features=...)``)
  and uncached (``model(video, tokens)``; ``encode_text`` trims the padding after the longest EOT);
* transformers uncached with the labels padded to the longest (the processor's ``padding=True``,
  with its attention mask) -- **the reference of every ratio** in fp32 -- and padded to 77
  (``padding="max_length"``), and "cached": ``get_text_features`` once, then the rest of
  ``XCLIPModel.forward`` replayed with its own modules
  (:func:`xclip_app.bench.hf_reference.hf_forward_cached`).

With ``onnx=True`` (default when ONNX Runtime is installed) the same weights are exported with
:func:`xclip.export_model` (fp32, and int8 dynamic quantisation on the CPU) and timed in the same
run as ``ort fp32``/``ort int8`` rows: cached (the video graph and the head against the text
features of that export) and, for fp32, uncached (the text graph too). Their ratio to ours fp32
cached is the target ``ort_fp32_cached_vs_ours_fp32_cached >= 1.3``.

Precisions: fp32, and bf16 (fp16 too on CUDA) through ``torch.autocast`` with fp32 weights for
*both* libraries (the usual inference recipe; the same casts on both sides). ``cast="weights"``
instead casts both models' weights and inputs to the low precision.

It also times large square matmuls in the same run (the machine's practical matmul peak, GFLOP/s)
and reports each configuration's achieved model GFLOP/s as a fraction of that peak. Model work is
the ``xclip.flops`` count in ``mode="model"`` (multiply-adds of the matmuls, convolution and
attention that our forward executes, for the actual text length), times 2 FLOPs per multiply-add,
the same unit as the matmul peak.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

import xclip
from xclip.convert.hf import config_to_hf
from xclip.errors import InputError
from xclip.export import ExportedModel, load_exported
from xclip.flops import count_flops
from xclip.precision import PRECISIONS, autocast
from xclip_app.bench.harness import (
    device_name,
    matmul_peak,
    median_min,
    package_version,
    sync,
    time_call,
)
from xclip_app.bench.hf_reference import hf_forward_cached

if TYPE_CHECKING:
    from transformers import XCLIPModel

__all__ = [
    "LABELS",
    "REFERENCE",
    "bench_model",
    "build_pair",
    "format_model_result",
    "top1_agreement",
]

LABELS = (
    "archery",
    "playing guitar",
    "eating spaghetti",
    "riding a bike",
    "swimming backstroke",
    "juggling balls",
    "making tea",
    "playing chess",
    "surfing water",
    "tying shoe laces",
    "walking the dog",
    "brushing teeth",
    "climbing a rope",
    "dribbling basketball",
    "folding paper",
    "mowing lawn",
)
REFERENCE = "hf fp32 uncached longest"
CASTS = ("autocast", "weights")

# (ours, transformers or None) per precision name
Models = dict[str, tuple[xclip.XCLIP, "XCLIPModel | None"]]


@dataclass
class _Configuration:
    """One timed forward: implementation, precision, text path and batch, with its timings."""

    name: str
    impl: str  # "ours" or "hf"
    dtype: str  # precision name
    text: str  # "cached", "uncached", "uncached longest", "uncached max77"
    batch: int
    fn: Callable[[], object]
    macs: float  # multiply-adds of the useful work
    times: list[float] = field(default_factory=list)


def build_pair(
    arch: str, device: torch.device | str, tmp_dir: str | None = None, seed: int = 0
) -> tuple[xclip.XCLIP, XCLIPModel]:
    """(ours, hf): ``transformers.XCLIPModel`` with random weights and xclip loaded from its
    ``save_pretrained`` directory (identical weights), both in eval mode on ``device``."""
    import transformers  # lazy: optional dependency

    cfg = xclip.get_config(arch)
    meta = {
        k: v
        for k, v in config_to_hf(cfg).items()
        if k not in ("architectures", "model_type", "dtype")
    }
    torch.manual_seed(seed)
    hf = transformers.XCLIPModel(transformers.XCLIPConfig(**meta)).eval()
    with tempfile.TemporaryDirectory(dir=tmp_dir) as d:
        hf.save_pretrained(d)
        ours = xclip.load_model(d).eval()
    if ours.cfg != cfg:
        raise RuntimeError(f"HF round trip changed the config: {ours.cfg} != {cfg}")
    hf.set_attn_implementation("sdpa")
    return ours.to(device), hf.to(device)


def _precision_context(
    precision: str, cast: str, device: torch.device
) -> contextlib.AbstractContextManager:
    """Autocast to ``precision`` around fp32 weights, or nothing when the weights are cast."""
    return contextlib.nullcontext() if cast == "weights" else autocast(precision, device)


def _input_dtype(precision: str, cast: str) -> torch.dtype:
    """The dtype of the videos fed to the models: the low precision only when weights are cast."""
    return PRECISIONS[precision] if cast == "weights" else torch.float32


def bench_model(
    arch: str = "xclip_b32_8f",
    *,
    device: str = "cpu",
    threads: int | None = None,
    repeats: int | None = None,
    batch_sizes: list[int] | None = None,
    num_labels: int = 10,
    dtypes: list[str] | None = None,
    cast: str = "autocast",
    hf: bool = True,
    peak: bool = True,
    warmup: int = 2,
    peak_seconds: float | None = None,
    topk_batch: int = 4,
    onnx: bool | None = None,
    log: Callable[[str], None] = lambda msg: None,
) -> dict[str, Any]:
    """Run the model benchmark; returns a JSON-able dict (see :func:`format_model_result`).

    ``dtypes`` are :data:`xclip.precision.PRECISIONS` names (fp32 is always added: it holds the
    reference); ``cast`` is "autocast" or "weights"; defaults depend on the device (CPU: 7
    repeats, batch 1, fp32+bf16; CUDA: 30 repeats, batches 1 and 16, fp32+bf16+fp16).
    """
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda but torch.cuda.is_available() is False")
    if threads:
        torch.set_num_threads(threads)
    is_cuda = dev.type == "cuda"
    repeats = repeats or (30 if is_cuda else 7)
    batch_sizes = batch_sizes or ([1, 16] if is_cuda else [1])
    dtypes = dtypes or (["fp32", "bf16", "fp16"] if is_cuda else ["fp32", "bf16"])
    for d in dtypes:
        if d not in PRECISIONS:
            raise InputError(f"unknown dtype {d!r}; choose from {sorted(PRECISIONS)}")
    if "fp32" not in dtypes:
        dtypes = ["fp32", *dtypes]
    if cast not in CASTS:
        raise InputError(f"cast must be 'autocast' or 'weights', got {cast!r}")
    if not 1 <= num_labels <= len(LABELS):
        raise InputError(f"--labels must be in [1, {len(LABELS)}]")
    if peak_seconds is None:
        peak_seconds = 1.0
    if is_cuda:
        torch.backends.cudnn.benchmark = False

    cfg = xclip.get_config(arch)
    log(f"building {arch} (transformers with random weights -> save_pretrained -> xclip)")
    t0 = time.perf_counter()
    if hf:
        ours, hf_model = build_pair(arch, dev)
    else:
        torch.manual_seed(0)
        ours, hf_model = xclip.create_model(arch).eval().to(dev), None
    log(f"built in {time.perf_counter() - t0:.1f}s")
    if onnx is None:
        onnx = importlib.util.find_spec("onnxruntime") is not None
    exports: dict[str, ExportedModel] = {}
    export_dir = tempfile.TemporaryDirectory() if onnx else None
    if onnx:
        for q in ("fp32", "int8") if dev.type == "cpu" else ("fp32",):
            t0 = time.perf_counter()
            d = xclip.export_model(
                ours.float().cpu(),
                f"{export_dir.name}/{q}",
                quantize=None if q == "fp32" else q,
            )
            exports[q] = load_exported(d, threads=torch.get_num_threads()).to(dev)
            log(f"exported to ONNX ({q}) in {time.perf_counter() - t0:.1f}s")
        ours.to(dev)

    tokens = xclip.tokenize(list(LABELS[:num_labels]), context_length=cfg.context_length).to(dev)
    eot = tokens.argmax(dim=-1)  # [K]
    n_text = int(eot.max()) + 1  # what encode_text runs and HF's padding="longest" gives
    ids_longest = tokens[:, :n_text]  # [K, n_text]
    mask_longest = (torch.arange(n_text, device=dev)[None] <= eot[:, None]).long()
    mask_77 = (torch.arange(cfg.context_length, device=dev)[None] <= eot[:, None]).long()
    gen = torch.Generator().manual_seed(1234)

    def video(b: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        # [B, T, 3, H, W], drawn on the CPU so every device sees the same numbers
        x = torch.randn(b, cfg.num_frames, 3, cfg.image_size, cfg.image_size, generator=gen)
        return x.to(dev, dtype)

    models: Models = {"fp32": (ours, hf_model)}
    for dname in dtypes:
        if dname != "fp32" and cast == "weights":
            dt = PRECISIONS[dname]
            models[dname] = (
                copy.deepcopy(ours).to(dt),
                copy.deepcopy(hf_model).to(dt) if hf_model is not None else None,
            )
        elif dname != "fp32":
            models[dname] = models["fp32"]

    def macs(b: int, with_text: bool = True) -> float:
        # model convention: multiply-adds, for the actual text length
        r = count_flops(cfg, mode="model", text_length=n_text, num_texts=num_labels, batch_size=b)
        return (r.total - (0 if with_text else r.components["text"])) * 1e9

    # configurations --------------------------------------------------------------------------
    configs: list[_Configuration] = []
    inputs = {(b, d): video(b, _input_dtype(d, cast)) for b in batch_sizes for d in dtypes}
    for b in batch_sizes:
        for dname in dtypes:
            m_ours, m_hf = models[dname]
            x = inputs[(b, dname)]
            with torch.inference_mode(), _precision_context(dname, cast, dev):
                tf = m_ours.encode_text(tokens)
                hf_tf = (
                    m_hf.get_text_features(
                        input_ids=ids_longest, attention_mask=mask_longest
                    ).pooler_output
                    if m_hf is not None
                    else None
                )

            def add(
                impl: str, text: str, fn: Callable[[], object], work: float, dname=dname, b=b
            ) -> None:
                suffix = f" b{b}" if len(batch_sizes) > 1 else ""
                configs.append(
                    _Configuration(f"{impl} {dname} {text}{suffix}", impl, dname, text, b, fn, work)
                )

            add(
                "ours",
                "cached",
                lambda m=m_ours, x=x, tf=tf: m(x, text_features=tf),
                macs(b, False),
            )
            add("ours", "uncached", lambda m=m_ours, x=x: m(x, tokens), macs(b))
            if m_hf is not None:
                add(
                    "hf",
                    "cached",
                    lambda m=m_hf, x=x, tf=hf_tf: hf_forward_cached(m, x, tf),
                    macs(b, False),
                )
                add(
                    "hf",
                    "uncached longest",
                    lambda m=m_hf, x=x: (
                        m(
                            input_ids=ids_longest, attention_mask=mask_longest, pixel_values=x
                        ).logits_per_video
                    ),
                    macs(b),
                )
                if dname == "fp32" or is_cuda:
                    add(
                        "hf",
                        "uncached max77",
                        lambda m=m_hf, x=x: (
                            m(
                                input_ids=tokens, attention_mask=mask_77, pixel_values=x
                            ).logits_per_video
                        ),
                        macs(b),
                    )  # useful work: the 68 pad positions do not count

            if dname == "fp32":
                for q, em in exports.items():
                    with torch.inference_mode():
                        etf = em.encode_text(tokens)
                    add(
                        "ort",
                        "cached",
                        lambda em=em, x=x, tf=etf: em.logits(em.encode_video(x), tf),
                        macs(b, False),
                        dname=q,
                    )
                    if q == "fp32":
                        add("ort", "uncached", lambda em=em, x=x: em(x, tokens), macs(b), dname=q)

    # peak ------------------------------------------------------------------------------------
    peaks: dict[str, Any] = {}
    if peak:
        for dname in dtypes:
            peaks[dname] = matmul_peak(dev, dname, seconds=peak_seconds)
            log(f"matmul peak {dname}: {peaks[dname]['gflops_per_s']:.0f} GFLOP/s")

    # timing: warm up each, then interleave ---------------------------------------------------
    def call(c: _Configuration) -> object:
        if c.impl == "ort":  # the graph's precision is fixed at export
            with torch.inference_mode():
                return c.fn()
        with torch.inference_mode(), _precision_context(c.dtype, cast, dev):
            return c.fn()

    log(f"warming up {len(configs)} configurations")
    for c in configs:
        for _ in range(warmup):
            call(c)
    sync(dev)
    log(f"timing {repeats} interleaved repeats")
    for r in range(repeats):
        order = configs if r % 2 == 0 else configs[::-1]  # alternate to cancel drift
        for c in order:
            c.times.append(time_call(lambda c=c: call(c), dev))
    # peak again at the end: the machine may have changed under us; keep the best
    if peak:
        for dname in dtypes:
            again = matmul_peak(dev, dname, seconds=peak_seconds / 2)
            if again["gflops_per_s"] > peaks[dname]["gflops_per_s"]:
                peaks[dname] = again

    rows = _result_rows(configs, peaks)
    agreement = top1_agreement(
        models, dtypes, cast, dev, video(topk_batch), tokens, ids_longest, mask_longest,
        extra={f"ort {q}": em for q, em in exports.items()},
    )  # fmt: skip
    if export_dir is not None:
        export_dir.cleanup()
    targets = _targets(configs, batch_sizes, dtypes)
    met = {
        k: (v is not None and v["median"] >= float(k.rsplit(">=", 1)[1]))
        for k, v in targets.items()
    }
    return {
        "arch": arch,
        "device": str(dev),
        "device_name": device_name(dev),
        "torch": torch.__version__,
        "transformers": package_version("transformers") if hf else None,
        "threads": torch.get_num_threads(),
        "cuda_matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32 if is_cuda else None,
        "cast": cast,
        "repeats": repeats,
        "num_labels": num_labels,
        "text_tokens": {"longest": n_text, "max_length": cfg.context_length},
        "batch_sizes": batch_sizes,
        "dtypes": dtypes,
        "reference": REFERENCE,
        "peak": peaks,
        "results": rows,
        "targets": targets,
        "targets_met": met,
        "top1": agreement,
    }


def _result_rows(configs: Sequence[_Configuration], peaks: dict[str, Any]) -> list[dict[str, Any]]:
    """One JSON-able row per configuration; ratios against the reference of the same batch."""
    ref_by_batch = {
        c.batch: c
        for c in configs
        if c.impl == "hf" and c.dtype == "fp32" and c.text == "uncached longest"
    }
    rows = []
    for c in configs:
        med, mn = median_min(c.times)
        ref = ref_by_batch.get(c.batch)
        ref_med = median_min(ref.times)[0] if ref else None
        achieved = 2 * c.macs / med / 1e9
        rows.append(
            {
                "name": c.name,
                "impl": c.impl,
                "dtype": c.dtype,
                "text": c.text,
                "batch": c.batch,
                "median_s": med,
                "min_s": mn,
                "times_s": c.times,
                "videos_per_s": c.batch / med,
                "model_gmacs": c.macs / 1e9,
                "achieved_gflops_per_s": achieved,
                "frac_of_peak": achieved / peaks[c.dtype]["gflops_per_s"]
                if c.dtype in peaks
                else None,
                "speedup_vs_ref": ref_med / med if ref_med else None,
            }
        )
    return rows


def paired_ratio(ref_times: Sequence[float], times: Sequence[float]) -> dict[str, float]:
    """How many times faster a configuration is than a reference timed in the same interleaved
    repeats: the ratio ``ref / time`` per repeat (each repeat ran both within seconds, so the
    machine's load cancels), as its median and the 10th-90th percentile range (the spread)."""
    ratios = sorted(r / t for r, t in zip(ref_times, times, strict=True))
    n = len(ratios)

    def q(p: float) -> float:
        return ratios[min(n - 1, max(0, round(p * (n - 1))))]

    return {"median": statistics.median(ratios), "p10": q(0.1), "p90": q(0.9), "n": n}


def _targets(
    configs: Sequence[_Configuration],
    batch_sizes: Sequence[int],
    dtypes: Sequence[str],
) -> dict[str, dict[str, float] | None]:
    """The speed targets ("<what> >= <ratio>") and their paired ratios (median and spread):
    ours against transformers fp32 (the table's reference), ours against transformers at the
    same precision, and ONNX Runtime fp32 against eager fp32."""

    def find(impl: str, dname: str, text: str, b: int) -> _Configuration | None:
        return next(
            (c for c in configs if (c.impl, c.dtype, c.text, c.batch) == (impl, dname, text, b)),
            None,
        )

    def ratio(fast: _Configuration | None, ref: _Configuration | None) -> dict | None:
        return paired_ratio(ref.times, fast.times) if fast and ref else None

    targets: dict[str, dict[str, float] | None] = {}
    low = next((d for d in ("bf16", "fp16") if d in dtypes), None)
    hf_text = {"cached": "cached", "uncached": "uncached longest"}
    for b in batch_sizes:
        pre = f"b{b} " if len(batch_sizes) > 1 else ""
        ref = find("hf", "fp32", "uncached longest", b)
        if ref is not None:
            for text in ("uncached", "cached"):
                targets[f"{pre}ours_fp32_{text}_vs_hf_fp32 >= 1.0"] = ratio(
                    find("ours", "fp32", text, b), ref
                )
            if low:
                for text in ("uncached", "cached"):
                    targets[f"{pre}ours_{low}_{text}_vs_hf_fp32 >= 1.8"] = ratio(
                        find("ours", low, text, b), ref
                    )
            for dname in dtypes:  # ours at least as fast as transformers in every row
                for text in ("uncached", "cached"):
                    targets[f"{pre}ours_{dname}_{text}_vs_hf_{dname}_{text} >= 1.0"] = ratio(
                        find("ours", dname, text, b), find("hf", dname, hf_text[text], b)
                    )
        ort = find("ort", "fp32", "cached", b)
        if ort is not None:
            targets[f"{pre}ort_fp32_cached_vs_ours_fp32_cached >= 1.3"] = ratio(
                ort, find("ours", "fp32", "cached", b)
            )
    return targets


def top1_agreement(
    models: Models,
    dtypes: Sequence[str],
    cast: str,
    device: torch.device,
    x: torch.Tensor,
    tokens: torch.Tensor,
    ids: torch.Tensor,
    mask: torch.Tensor,
    extra: dict[str, ExportedModel] | None = None,
) -> dict[str, Any]:
    """Top-1 of ours (every dtype) and of transformers (every dtype) against transformers fp32 on
    one fixed random batch of videos ``x`` ``[B, T, 3, H, W]``, with the logit margins to judge a
    disagreement. ``tokens`` ``[K, 77]`` go to ours, ``ids``/``mask`` (padded to the longest) to
    transformers."""
    out: dict[str, Any] = {}
    logits = {}
    for dname in dtypes:
        m_ours, m_hf = models[dname]
        xd = x.to(_input_dtype(dname, cast))
        with torch.inference_mode(), _precision_context(dname, cast, device):
            logits[f"ours {dname}"] = m_ours(xd, tokens).float().cpu()
            if m_hf is not None:
                logits[f"hf {dname}"] = (
                    m_hf(input_ids=ids, attention_mask=mask, pixel_values=xd)
                    .logits_per_video.float()
                    .cpu()
                )
    for name, em in (extra or {}).items():
        with torch.inference_mode():
            logits[name] = em(x, tokens).float().cpu()
    ref_key = "hf fp32" if "hf fp32" in logits else "ours fp32"
    ref = logits[ref_key]
    top2 = ref.topk(2, dim=-1).values
    out["reference"] = ref_key
    out["batch"] = int(ref.shape[0])
    out["ref_top1"] = ref.argmax(-1).tolist()
    out["ref_min_margin"] = float((top2[:, 0] - top2[:, 1]).min())
    agree = {}
    for k, v in logits.items():
        if k == ref_key:
            continue
        agree[k] = {
            "same_top1": bool((v.argmax(-1) == ref.argmax(-1)).all()),
            "max_abs_logit_diff": float((v - ref).abs().max()),
        }
    out["vs_reference"] = agree
    # ours against transformers at the same precision (a near-tie flips alike on both sides)
    out["vs_hf_same_dtype"] = {
        d: bool((logits[f"ours {d}"].argmax(-1) == logits[f"hf {d}"].argmax(-1)).all())
        for d in dtypes
        if f"hf {d}" in logits
    }
    ours_keys = [k for k in agree if k.startswith("ours")]
    # fp32 against fp32: must agree (identical weights); low precision may flip a near-tie
    out["ours_fp32_agree"] = agree["ours fp32"]["same_top1"] if "ours fp32" in agree else True
    out["ours_agree"] = all(agree[k]["same_top1"] for k in ours_keys) if ours_keys else True
    return out


def format_model_result(res: dict[str, Any]) -> str:
    """The human-readable table of :func:`bench_model`'s result."""
    lines = [
        f"xclip bench model: {res['arch']} on {res['device']} ({res['device_name']}), "
        f"torch {res['torch']}, transformers {res['transformers']}, threads {res['threads']}",
        f"{res['num_labels']} labels ({res['text_tokens']['longest']} tokens longest), "
        f"{res['repeats']} interleaved repeats, low precision by {res['cast']}; "
        f"ratio = {res['reference']} median / median (higher is faster)",
    ]
    if res["peak"]:
        lines.append(
            "matmul peak: "
            + ", ".join(
                f"{d} {p['gflops_per_s']:.0f} GFLOP/s (n={p['n']})" for d, p in res["peak"].items()
            )
        )
    lines.append("")
    head = (
        f"{'configuration':<32} {'batch':>5} {'median ms':>10} {'min ms':>9} {'videos/s':>9} "
        f"{'GFLOP/s':>8} {'%peak':>6} {'ratio':>6}"
    )
    lines += [head, "-" * len(head)]
    for r in res["results"]:
        frac = f"{100 * r['frac_of_peak']:.0f}%" if r["frac_of_peak"] is not None else "-"
        ratio = f"{r['speedup_vs_ref']:.2f}x" if r["speedup_vs_ref"] else "-"
        name = f"{r['impl']} {r['dtype']} {r['text']}"
        lines.append(
            f"{name:<32} {r['batch']:>5} {1e3 * r['median_s']:>10.1f} {1e3 * r['min_s']:>9.1f} "
            f"{r['videos_per_s']:>9.2f} {r['achieved_gflops_per_s']:>8.1f} {frac:>6} {ratio:>6}"
        )
    lines.append("")
    lines.append(
        "targets: the median of the per-repeat ratios (both timed within seconds of each other), "
        "and their 10th-90th percentile range"
    )
    for k, v in res["targets"].items():
        ok = "OK  " if res["targets_met"][k] else "MISS"
        lines.append(
            f"[{ok}] {k}: {v['median']:.2f}x ({v['p10']:.2f}-{v['p90']:.2f}, n={v['n']})"
            if v is not None
            else f"[MISS] {k}: n/a"
        )
    t = res["top1"]
    lines.append(
        f"top-1 on {t['batch']} random videos vs {t['reference']} (min top1-top2 margin "
        f"{t['ref_min_margin']:.4f}): "
        + ", ".join(
            f"{k} {'same' if v['same_top1'] else 'DIFFERENT'} (max|dlogit| {v['max_abs_logit_diff']:.1e})"
            for k, v in t["vs_reference"].items()
        )
    )
    if t.get("vs_hf_same_dtype"):
        lines.append(
            "top-1 ours vs transformers at the same precision: "
            + ", ".join(
                f"{d} {'same' if v else 'DIFFERENT'}" for d, v in t["vs_hf_same_dtype"].items()
            )
        )
    return "\n".join(lines)
