"""Stage 1: language-image pretraining of a tiny CLIP, the demo's stand-in for "CLIP-400M".

Still images of the demo world with alt-text-like captions of their *static* content (colour,
shape, position; some attributes left out), trained with CLIP's symmetric contrastive loss. The
model is an X-CLIP built with every video module switched off (no cross-frame communication, no
MIT, no prompts), so its vision blocks are plain CLIP ViT blocks, ``model.visual(images, 1)[0]``
is CLIP's image embedding and ``model.encode_text`` CLIP's text embedding. Its state dict therefore
has exactly the key layout of an OpenAI CLIP ViT checkpoint (checked before saving), and stage 2
loads it through the same path as real CLIP weights: ``xclip.create_model(arch, clip_weights=...)``.

Captions can describe an image only partly ("a red square" fits a red square anywhere), so the
contrastive targets count every caption whose named attributes all match an image as a positive.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import xclip
from xclip.checkpoint import save_safetensors

from .world import COLOURS, MOTIONS, POSITIONS, SHAPES, caption_attributes, render_image

__all__ = ["PretrainSpec", "openai_clip_keys", "pretrain_clip", "zero_shot_image_accuracy"]


@dataclass(frozen=True)
class PretrainSpec:
    """Stage 1's data, steps and optimiser settings."""

    seed: int = 0
    images: int = 12000  # rendered once, re-augmented every epoch (random crops)
    steps: int = 600
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_steps: int = 20
    image_size: int = 48  # rendered size; the model sees random 32 px crops of a 36 px resize
    motion_p: float = 0.5  # fraction of stills of a moving object (with its motion sign)
    threads: int = 2  # nothing else runs during this stage


def openai_clip_keys(vision_layers: int, text_layers: int) -> set[str]:
    """The state-dict keys of an OpenAI CLIP ViT (``clip.load(...).state_dict()``, minus the
    TorchScript extras ``input_resolution``/``context_length``/``vocab_size``)."""
    block = [
        "attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight", "attn.out_proj.bias",
        "ln_1.weight", "ln_1.bias", "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight",
        "mlp.c_proj.bias", "ln_2.weight", "ln_2.bias",
    ]  # fmt: skip
    keys = {
        "visual.class_embedding", "visual.positional_embedding", "visual.proj",
        "visual.conv1.weight", "visual.ln_pre.weight", "visual.ln_pre.bias",
        "visual.ln_post.weight", "visual.ln_post.bias", "token_embedding.weight",
        "positional_embedding", "text_projection", "logit_scale", "ln_final.weight",
        "ln_final.bias",
    }  # fmt: skip
    keys |= {f"visual.transformer.resblocks.{i}.{b}" for i in range(vision_layers) for b in block}
    keys |= {f"transformer.resblocks.{i}.{b}" for i in range(text_layers) for b in block}
    return keys


_POS_NAMES = [p[0] for p in POSITIONS]


def _render_pool(
    n: int, seed: int, size: int, workers: int = 2, motion_p: float = 0.3
) -> tuple[np.ndarray, list[str], list[dict[str, str]]]:
    """``n`` images (uint8 [n, size, size, 3]) with their captions and full attributes."""
    jobs = [([seed, i], size, motion_p) for i in range(n)]
    if workers > 1:
        with mp.get_context("fork").Pool(workers) as pool:
            items = pool.map(_render_one, jobs, chunksize=256)
    else:
        items = [_render_one(j) for j in jobs]
    imgs = np.stack([it[0] for it in items])
    caps = [it[1] for it in items]
    full = [it[2] for it in items]
    return imgs, caps, full


def _render_one(args: tuple[list[int], int, float]) -> tuple[np.ndarray, str, dict[str, str]]:
    s, size, motion_p = args
    return render_image(np.random.default_rng(s), size, motion_p)


def _to_model_input(imgs: np.ndarray, train: bool, gen: torch.Generator) -> torch.Tensor:
    """uint8 [B, H, W, 3] -> normalised float [B, 3, 32, 32]: resize the short side to 36 (the
    pipeline's ``int(256/224*32)``), then a random (train) or centre (eval) 32 px crop."""
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(36, 36), mode="bilinear", antialias=True, align_corners=False)
    if train:
        ox, oy = (int(v) for v in torch.randint(0, 5, (2,), generator=gen))
    else:
        ox = oy = 2
    x = x[:, :, oy : oy + 32, ox : ox + 32]
    mean = torch.tensor(xclip.IMAGENET_MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(xclip.IMAGENET_STD).view(1, 3, 1, 1) * 255
    return (x - mean) / std


_ATTR_VALUES = {
    "colour": list(COLOURS),
    "shape": list(SHAPES),
    "pos": _POS_NAMES,
    "motion": [*MOTIONS, "none"],
}


def _code(attrs: dict[str, str]) -> list[int]:
    """Attributes as ints (-1 = not named)."""
    return [_ATTR_VALUES[k].index(attrs[k]) if k in attrs else -1 for k in _ATTR_VALUES]


def _match(caption_codes: torch.Tensor, image_codes: torch.Tensor) -> torch.Tensor:
    """[n_images, n_captions] bool: every attribute the caption names matches the image."""
    c, i = caption_codes[None], image_codes[:, None]
    return ((c == -1) | (c == i)).all(-1)


def encode_images(model: xclip.XCLIP, x: torch.Tensor) -> torch.Tensor:
    """CLIP's image embedding ``[B, C]`` of images ``x [B, 3, H, W]``: the X-CLIP vision tower
    on one frame (with the video modules off, its blocks are plain CLIP ViT blocks)."""
    return model.visual(x, 1)[0]


@torch.no_grad()
def zero_shot_image_accuracy(
    model: xclip.XCLIP, seed: int = 12345, n: int = 600
) -> dict[str, float]:
    """Zero-shot accuracy (%) of the image CLIP on fresh stills: colour (5-way, "a red object"),
    shape (3-way, "a square"), position (9-way, "a object at the top left") on stills without a
    motion sign; motion word (10-way, "a object moving left") on stills with one."""
    model.eval()
    out = {}
    for attr, names, template, motion_p in (
        ("colour", list(COLOURS), "a {} object", 0.0),
        ("shape", list(SHAPES), "a {}", 0.0),
        ("pos", _POS_NAMES, "a object at the {}", 0.0),
        ("motion", list(MOTIONS), "a object {}", 1.0),
    ):
        imgs, _, full = _render_pool(n, seed, 48, workers=1, motion_p=motion_p)
        v = F.normalize(
            encode_images(model, _to_model_input(imgs, False, torch.Generator())), dim=-1
        )
        t = F.normalize(
            model.encode_text(xclip.tokenize([template.format(c) for c in names])), dim=-1
        )
        pred = (v @ t.T).argmax(1)
        truth = torch.tensor([names.index(f[attr]) for f in full])
        out[attr] = float((pred == truth).float().mean() * 100)
    return out


def pretrain_clip(
    arch: str,
    out_file: str | Path,
    spec: PretrainSpec = PretrainSpec(),
    *,
    log: Callable[[str], None] = print,
) -> dict:
    """Train the tiny CLIP and write it to ``out_file`` (safetensors, OpenAI CLIP key layout).
    Returns a summary dict (loss curve, zero-shot image accuracies, timings)."""
    t_start = time.perf_counter()
    torch.manual_seed(spec.seed)
    old_threads = torch.get_num_threads()
    if spec.threads > 0:
        torch.set_num_threads(spec.threads)
    try:
        model = xclip.create_model(arch, cross_frame=False, use_mit=False, use_prompts=False)
        cfg = model.cfg
        t0 = time.perf_counter()
        imgs, caps, full = _render_pool(spec.images, spec.seed, spec.image_size,
                                         motion_p=spec.motion_p)  # fmt: skip
        log(f"  rendered {len(imgs)} captioned images in {time.perf_counter() - t0:.1f}s")
        cap_code = {c: _code(caption_attributes(c)) for c in set(caps)}
        img_codes = torch.tensor([_code(f) for f in full])
        decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
        no_decay = [
            p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)
        ]
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": spec.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=spec.lr, betas=(0.9, 0.98), eps=1e-6,
        )  # fmt: skip
        gen = torch.Generator().manual_seed(spec.seed)
        curve = []
        model.train()
        t_train = time.perf_counter()
        for step in range(spec.steps):
            # our own schedule: LambdaLR's base_lr * (warmup * cosine) rounds differently (5 of 600
            # steps), which would change the stage-1 checkpoint and every cached number after it
            lr = spec.lr * min(1.0, (step + 1) / spec.warmup_steps)
            lr *= 0.5 * (1 + math.cos(math.pi * step / spec.steps))
            for g in opt.param_groups:
                g["lr"] = lr
            idx = torch.randint(len(imgs), (spec.batch_size,), generator=gen).numpy()
            x = _to_model_input(imgs[idx], True, gen)
            batch_caps = [caps[i] for i in idx]
            uniq = sorted(set(batch_caps))
            pos = _match(torch.tensor([cap_code[c] for c in uniq]), img_codes[idx]).float()
            v = F.normalize(encode_images(model, x), dim=-1)
            t = F.normalize(model.encode_text(xclip.tokenize(uniq)), dim=-1)
            logits = model.logit_scale.exp() * v @ t.T  # [B, U]
            # our own loss: several captions can fit one image (see the module docstring), which
            # the one-positive-per-row CLIP losses of open_clip and others do not express
            loss_i = -(F.log_softmax(logits, 1) * (pos / pos.sum(1, keepdim=True))).sum(1).mean()
            loss_t = (
                -(F.log_softmax(logits.T, 1) * (pos.T / pos.T.sum(1, keepdim=True))).sum(1).mean()
            )
            loss = (loss_i + loss_t) / 2
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))
            curve.append({"step": step + 1, "loss": float(loss.detach()), "lr": lr,
                          "logit_scale": float(model.logit_scale.detach().exp())})  # fmt: skip
            if (step + 1) % 50 == 0 or step + 1 == spec.steps:
                el = time.perf_counter() - t_train
                log(f"  step {step + 1}/{spec.steps}  loss {float(loss.detach()):.3f}  "
                    f"scale {float(model.logit_scale.detach().exp()):.1f}  {(step + 1) * spec.batch_size / el:.0f} img/s")  # fmt: skip
        acc = zero_shot_image_accuracy(model, seed=spec.seed + 99991)
        sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        expected = openai_clip_keys(cfg.vision_layers, cfg.text_layers)
        if set(sd) != expected:
            raise RuntimeError(
                f"the stage-1 CLIP does not have the OpenAI key layout: extra "
                f"{sorted(set(sd) - expected)[:5]}, missing {sorted(expected - set(sd))[:5]}"
            )
        out_file = Path(out_file)
        out_file.parent.mkdir(parents=True, exist_ok=True)
        save_safetensors(sd, out_file, metadata={"format": "pt", "quick_gelu": "true"})
        return {
            "spec": asdict(spec),
            "arch": arch,
            "checkpoint": str(out_file),
            "num_keys": len(sd),
            "params": sum(v.numel() for v in sd.values()),
            "zero_shot_image_accuracy": acc,
            "curve": curve,
            "seconds": round(time.perf_counter() - t_start, 2),
        }
    finally:
        torch.set_num_threads(old_threads)
