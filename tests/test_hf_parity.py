"""Parity with ``transformers.XCLIPModel`` and the Hugging Face directory format, both directions.

Random weights only (no network): a randomly initialised HF model is the oracle. Every parameter
is randomised (biases, LayerNorms, alpha too) so that every path contributes to the logits.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import xclip
from xclip.convert import hf as hf_convert
from xclip.ownership import kept_name

transformers = pytest.importorskip("transformers")

ATOL = 1e-4

# The xclip_test architecture in HF terms (heads given explicitly, as in xclip_test).
TINY_TEXT = dict(
    vocab_size=49408,
    hidden_size=64,
    intermediate_size=256,
    num_hidden_layers=2,
    num_attention_heads=4,
)
TINY_VISION = dict(
    hidden_size=64,
    intermediate_size=256,
    num_hidden_layers=2,
    num_attention_heads=4,
    image_size=32,
    patch_size=8,
    num_frames=4,
    mit_hidden_size=32,
    mit_intermediate_size=128,
    mit_num_attention_heads=4,
)


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------


def hf_config(text: dict | None = None, vision: dict | None = None, **top):
    top = {"projection_dim": 32, "prompt_num_attention_heads": 4, **top}
    return transformers.XCLIPConfig(
        text_config={**TINY_TEXT, **(text or {})},
        vision_config={**TINY_VISION, **(vision or {})},
        **top,
    )


def randomize_hf_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Randomise every parameter of an HF X-CLIP model at a scale that keeps activations sane."""
    g = torch.Generator().manual_seed(seed)
    ln_weights = {
        f"{name}.weight" for name, m in model.named_modules() if isinstance(m, torch.nn.LayerNorm)
    }

    def randn(shape, std):
        return std * torch.randn(shape, generator=g)

    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "logit_scale":
                p.fill_(math.log(1 / 0.07))
            elif name.endswith("prompts_generator.alpha"):
                p.copy_(0.1 + 0.4 * torch.rand(p.shape, generator=g))
            elif name in ln_weights:
                p.copy_(1 + randn(p.shape, 0.2))
            elif p.ndim == 1:  # biases, class embedding
                p.copy_(randn(p.shape, 0.1))
            elif name == "prompts_visual_projection":  # (D, P), used as x @ W
                p.copy_(randn(p.shape, p.shape[0] ** -0.5))
            elif "embedding" in name and p.ndim != 4:  # token / position embeddings
                p.copy_(randn(p.shape, 0.1))
            else:  # Linear (out, in) and the patch conv (D, 3, p, p)
                p.copy_(randn(p.shape, p[0].numel() ** -0.5))
    return model


def make_hf(cfg=None, seed: int = 0):
    torch.manual_seed(seed)
    model = transformers.XCLIPModel(cfg if cfg is not None else hf_config()).eval()
    model.set_attn_implementation("eager")
    return randomize_hf_(model, seed)


def make_video(b: int, t: int, size: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, t, 3, size, size, generator=g)


def make_tokens(lengths=(5, 9, 3), seq: int = 12, vocab: int = 49408, seed: int = 2):
    """Random ids [K, seq]: BOS, random words, EOT (the highest id) then zero padding."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.zeros(len(lengths), seq, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, n in enumerate(lengths):
        ids[i, 0] = vocab - 2
        ids[i, 1 : n - 1] = torch.randint(1, vocab - 2, (n - 2,), generator=g)
        ids[i, n - 1] = vocab - 1
        mask[i, :n] = 1
    return ids, mask


@torch.no_grad()
def hf_outputs(hf, video, ids, mask):
    out = hf(input_ids=ids, pixel_values=video, attention_mask=mask)
    return out.logits_per_video, out.video_embeds, out.text_embeds


@torch.no_grad()
def our_outputs(model, video, ids):
    feats = model.encode_video(video)
    text = model.encode_text(ids)
    logits = model.logits(feats, text)
    prompted = F.normalize(model.prompt_text(text, feats), dim=-1)
    return logits, F.normalize(feats.embeds, dim=-1), prompted


def max_diff(a, b) -> float:
    return (a - b).abs().max().item()


def assert_parity(hf, model, video, ids, mask, label: str = "") -> float:
    hf_logits, hf_video, hf_text = hf_outputs(hf, video, ids, mask)
    logits, v, t = our_outputs(model, video, ids)
    d = max_diff(logits, hf_logits)
    print(f"{label} max|logits diff| = {d:.3g}, video {max_diff(v, hf_video):.3g}")
    assert logits.shape == hf_logits.shape
    assert d <= ATOL, d
    assert max_diff(v, hf_video) <= ATOL
    assert max_diff(t, hf_text) <= ATOL
    # the logits are not trivially flat: the prompts and the video matter
    assert hf_logits.std() > 0.1
    return d


def load_hf(path: Path):
    model, info = transformers.XCLIPModel.from_pretrained(
        path, attn_implementation="eager", output_loading_info=True
    )
    assert not info["missing_keys"], info["missing_keys"]
    assert not info["unexpected_keys"], info["unexpected_keys"]
    assert not info["mismatched_keys"], info["mismatched_keys"]
    return model.eval()


# ------------------------------------------------------------------------------------------------
# parity
# ------------------------------------------------------------------------------------------------


def test_hf_dir_loads_with_identical_outputs(tmp_path):
    hf = make_hf()
    hf.save_pretrained(tmp_path / "hf")
    model = xclip.load_model(tmp_path / "hf").eval()
    # the HF tiny config is exactly the registered test architecture
    assert model.cfg == xclip.get_config("xclip_test")
    video = make_video(2, 4, 32)
    ids, mask = make_tokens()
    assert_parity(hf, model, video, ids, mask, "hf->xclip (sdpa)")
    assert_parity(hf, model.set_attn_impl("plain"), video, ids, mask, "hf->xclip (plain)")
    # padding to the full context (77) changes nothing on our side
    ids77 = F.pad(ids, (0, 77 - ids.shape[1]))
    with torch.no_grad():
        torch.testing.assert_close(model(video, ids77), model(video, ids), atol=1e-5, rtol=0)


def test_export_to_hf_round_trip(tmp_path):
    hf = make_hf(seed=3)
    hf.save_pretrained(tmp_path / "hf")
    model = xclip.load_model(tmp_path / "hf").eval()
    out = xclip.save_model(model, tmp_path / "export", format="hf")
    assert sorted(p.name for p in out.iterdir() if not kept_name(p.name)) == [
        "config.json",
        "model.safetensors",
    ]
    hf2 = load_hf(out)
    # bit-exact weights
    sd1, sd2 = hf.state_dict(), hf2.state_dict()
    assert sorted(sd1) == sorted(sd2)
    for k in sd1:
        assert torch.equal(sd1[k], sd2[k]), k
    video = make_video(2, 4, 32, seed=5)
    ids, mask = make_tokens(seed=6)
    assert_parity(hf2, model, video, ids, mask, "xclip->hf")
    # and the exported directory loads back into xclip
    again = xclip.load_model(out)
    assert again.cfg == model.cfg
    for k, v in model.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k


def test_head_counts_are_read_from_config(tmp_path):
    """Like the converted L/14 checkpoints: MIT/prompt heads differ from width // 64."""
    cfg = hf_config(
        text={"num_attention_heads": 8},
        vision={
            "num_attention_heads": 2,
            "mit_hidden_size": 128,
            "mit_intermediate_size": 512,
            "mit_num_attention_heads": 8,
        },
        projection_dim=128,
        prompt_num_attention_heads=16,
    )
    hf = make_hf(cfg, seed=7)
    hf.save_pretrained(tmp_path / "hf")
    model = xclip.load_model(tmp_path / "hf").eval()
    c = model.cfg
    assert (c.text_num_heads, c.vision_num_heads, c.mit_num_heads, c.prompt_num_heads) == (
        8,
        2,
        8,
        16,
    )
    assert model.mit.resblocks[0].attn.heads == 8
    assert model.prompts_generator.decoder[0].cross_attn.heads == 16
    video = make_video(2, 4, 32, seed=8)
    ids, mask = make_tokens(seed=9)
    assert_parity(hf, model, video, ids, mask, "non-default heads")
    # the head count matters: the width // 64 rule (2 heads here) gives other logits
    wrong = xclip.load_model(tmp_path / "hf", mit_heads=None, prompt_heads=None).eval()
    assert wrong.cfg.mit_num_heads == 2
    with torch.no_grad():
        assert max_diff(wrong(video, ids), model(video, ids)) > 1e-3
    # and the export writes them explicitly
    meta = json.loads(
        (xclip.save_model(model, tmp_path / "out", format="hf") / "config.json").read_text()
    )
    assert meta["vision_config"]["mit_num_attention_heads"] == 8
    assert meta["prompt_num_attention_heads"] == 16
    assert meta["text_config"]["num_attention_heads"] == 8
    assert_parity(load_hf(tmp_path / "out"), model, video, ids, mask, "non-default heads export")


def test_pytorch_model_bin_dir_with_legacy_position_ids(tmp_path):
    hf = make_hf(seed=11)
    d = tmp_path / "bin"
    hf.config.save_pretrained(d)
    sd = dict(hf.state_dict())
    # transformers 4.x (the 2022 hub uploads) also saved these int64 buffers
    sd["text_model.embeddings.position_ids"] = torch.arange(77)[None]
    sd["vision_model.embeddings.position_ids"] = torch.arange(17)[None]
    torch.save(sd, d / "pytorch_model.bin")
    model = xclip.load_model(d).eval()
    assert_parity(hf, model, make_video(1, 4, 32), *make_tokens(seed=12), "pytorch_model.bin")


def test_sharded_safetensors_dir(tmp_path):
    hf = make_hf(seed=13)
    hf.save_pretrained(tmp_path / "sharded", max_shard_size="1MB")
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    model = xclip.load_model(tmp_path / "sharded").eval()
    assert_parity(hf, model, make_video(1, 4, 32), *make_tokens(seed=14), "sharded")


def test_legacy_2022_config_json(tmp_path):
    """The 2022 hub configs: legacy class name, *_config_dict entries next to *_config."""
    hf = make_hf(seed=15)
    hf.save_pretrained(tmp_path / "hf")
    meta = json.loads((tmp_path / "hf" / "config.json").read_text())
    meta["architectures"] = ["XClipModel"]
    meta["text_config_dict"] = dict(meta["text_config"])
    meta["vision_config_dict"] = dict(meta["vision_config"])
    meta["text_config"] = {"vocab_size": 1}  # overridden by text_config_dict, as in transformers
    (tmp_path / "hf" / "config.json").write_text(json.dumps(meta))
    assert xclip.load_model(tmp_path / "hf").cfg == xclip.get_config("xclip_test")


@pytest.mark.slow
def test_full_size_b32_8f_parity(tmp_path):
    t0 = time.perf_counter()
    hf = make_hf(transformers.XCLIPConfig(), seed=21)  # microsoft/xclip-base-patch32 architecture
    hf.save_pretrained(tmp_path / "hf")
    model = xclip.load_model(tmp_path / "hf").eval()
    assert model.cfg == xclip.get_config("xclip_b32_8f")
    video = make_video(1, 8, 224, seed=22)
    ids = xclip.tokenize(["eating spaghetti", "playing sports", "go shopping"])
    n = int(ids.argmax(-1).max()) + 1
    ids = ids[:, :n]
    mask = (torch.arange(n)[None] <= ids.argmax(-1)[:, None]).long()
    assert_parity(hf, model, video, ids, mask, "full-size B/32")
    xclip.save_model(model, tmp_path / "out", format="hf")
    hf2 = load_hf(tmp_path / "out")
    assert len(hf2.state_dict()) == 591
    print(f"full-size B/32 test: {time.perf_counter() - t0:.1f}s")


# ------------------------------------------------------------------------------------------------
# errors and the mapping itself
# ------------------------------------------------------------------------------------------------


def test_config_without_weights_is_a_clear_error(tmp_path):
    make_hf().config.save_pretrained(tmp_path / "empty")
    with pytest.raises(xclip.CheckpointError, match="no weights.*model.safetensors"):
        xclip.load_model(tmp_path / "empty")


def test_single_hf_weights_file_points_to_the_directory(tmp_path):
    make_hf().save_pretrained(tmp_path / "hf")
    with pytest.raises(xclip.CheckpointError, match="load the whole directory"):
        xclip.load_model(tmp_path / "hf" / "model.safetensors")


def test_mapping_round_trip_is_exact_and_complete():
    hf = make_hf(seed=31)
    sd = hf.state_dict()
    orig = hf_convert.hf_to_original(sd)
    assert len(sd) == 151 and len(orig) == 123
    assert sorted(orig) == sorted(xclip.create_model("xclip_test").state_dict())
    back = hf_convert.original_to_hf(orig, xclip.get_config("xclip_test"))
    assert sorted(back) == sorted(sd)
    for k in sd:
        assert torch.equal(back[k], sd[k]), k
    # projections are transposed, the prompt projection is not
    assert torch.equal(orig["text_projection"], sd["text_projection.weight"].t())
    assert torch.equal(orig["visual.proj"], sd["visual_projection.weight"].t())
    assert torch.equal(orig["prompts_visual_proj"], sd["prompts_visual_projection"])
    w = orig["visual.transformer.resblocks.1.message_attn.in_proj_weight"]
    assert torch.equal(w[64:128], sd["vision_model.encoder.layers.1.message_attn.k_proj.weight"])


def test_unknown_and_incomplete_keys_are_errors():
    sd = dict(make_hf().state_dict())
    with pytest.raises(xclip.CheckpointError, match="extra_head.weight"):
        hf_convert.hf_to_original({**sd, "extra_head.weight": torch.zeros(1)})
    broken = dict(sd)
    del broken["mit.encoder.layers.0.self_attn.q_proj.bias"]
    with pytest.raises(xclip.CheckpointError, match=r"mit\.resblocks\.0\.attn\.in_proj_bias"):
        hf_convert.hf_to_original(broken)
    # message modules exist only in vision blocks
    with pytest.raises(
        xclip.CheckpointError, match="text_model.encoder.layers.0.message_fc.weight"
    ):
        hf_convert.hf_to_original(
            {**sd, "text_model.encoder.layers.0.message_fc.weight": torch.zeros(1)}
        )
    orig = xclip.create_model("xclip_test").state_dict()
    with pytest.raises(xclip.CheckpointError, match="visual.transformer.resblocks.0.attn.foo"):
        hf_convert.original_to_hf(
            {**orig, "visual.transformer.resblocks.0.attn.foo": torch.zeros(3)}
        )


def test_unsupported_hf_configs_name_the_key():
    base = hf_config().to_dict()

    def variant(**changes):
        meta = json.loads(json.dumps(base))
        for path, value in changes.items():
            node = meta
            *parents, leaf = path.split("__")
            for p in parents:
                node = node[p]
            node[leaf] = value
        return meta

    cases = {
        "mit_hidden_size": variant(
            vision_config__mit_hidden_size=64, vision_config__mit_intermediate_size=256
        ),
        "hidden_act": variant(text_config__hidden_act="gelu", vision_config__hidden_act="gelu"),
        "prompt_hidden_act": variant(prompt_hidden_act="relu"),
        "intermediate_size": variant(text_config__intermediate_size=100),
        "layer_norm_eps": variant(vision_config__layer_norm_eps=1e-6),
    }
    for key, meta in cases.items():
        with pytest.raises(xclip.CheckpointError, match=key):
            hf_convert.config_from_hf(meta)
    with pytest.raises(xclip.CheckpointError, match="not divisible"):
        hf_convert.config_from_hf(variant(prompt_num_attention_heads=5))


@pytest.mark.parametrize("name", xclip.list_models())
def test_config_to_hf_builds_the_same_architecture(name):
    cfg = xclip.get_config(name)
    meta = hf_convert.config_to_hf(cfg)
    assert hf_convert.config_from_hf(meta) == cfg
    hf_cfg = transformers.XCLIPConfig(**{k: v for k, v in meta.items() if k != "architectures"})
    v, t = hf_cfg.vision_config, hf_cfg.text_config
    assert (v.num_frames, v.image_size, v.patch_size, v.hidden_size) == (
        cfg.num_frames,
        cfg.image_size,
        cfg.patch_size,
        cfg.vision_width,
    )
    assert v.mit_num_attention_heads == cfg.mit_num_heads
    assert hf_cfg.prompt_num_attention_heads == cfg.prompt_num_heads
    assert (v.num_attention_heads, t.num_attention_heads) == (
        cfg.vision_num_heads,
        cfg.text_num_heads,
    )


def test_ablation_models_cannot_be_exported(tmp_path):
    model = xclip.create_model("xclip_test", use_prompts=False)
    with pytest.raises(ValueError, match="use_prompts=False"):
        xclip.save_model(model, tmp_path / "x", format="hf")
    assert not (tmp_path / "x").exists()
