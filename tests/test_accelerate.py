"""The fast inference path (xclip.inference.accelerate): defaults per device, the fixed-shape
compiled encoder (compiled on CPU here, as a slow test) and its equivalence with eager."""

from __future__ import annotations

import pytest
import torch

import xclip
from xclip.errors import InputError
from xclip.inference.accelerate import CompiledVideoEncoder, auto_batch_size, resolve_compile
from xclip.inference.pipeline import VideoPipeline

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = xclip.create_model("xclip_test").eval()
    with torch.no_grad():  # non-trivial MIT and prompt outputs (zero-initialised otherwise)
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return m


def test_cpu_defaults_are_unchanged(model):
    pipe = VideoPipeline(model, device="cpu")
    assert pipe.precision == "fp32" and pipe.batch_size == 8 and pipe._encoder is None


def test_resolve_compile():
    assert resolve_compile("auto", CPU) is None
    assert resolve_compile(False, CPU) is None
    assert resolve_compile(True, CPU) == "default"
    assert resolve_compile("auto", torch.device("cuda")) == "default"
    assert resolve_compile(True, torch.device("cuda")) == "max-autotune-no-cudagraphs"
    assert resolve_compile("cudagraphs", torch.device("cuda")) == "reduce-overhead"
    with pytest.raises(InputError, match="needs a CUDA device"):
        resolve_compile("cudagraphs", CPU)
    with pytest.raises(InputError, match="compile must be one of"):
        resolve_compile("fast", CPU)


def test_auto_batch_size_cpu_and_cuda(model, monkeypatch):
    assert auto_batch_size(model, CPU) == 8
    cuda = torch.device("cuda")
    # a big card: capped at 128 views; a small one: fewer, never below 8
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda d=None: (140 * 2**30, 141 * 2**30))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert auto_batch_size(model, cuda) == 128
    cfg = xclip.get_config("xclip_l14_8f")

    class Stub:
        pass

    stub = Stub()
    stub.cfg = cfg
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda d=None: (4 * 2**30, 8 * 2**30))
    small = auto_batch_size(stub, cuda, "bf16")
    assert 8 <= small < 128 and small & (small - 1) == 0
    assert auto_batch_size(stub, cuda, "fp32") <= small


def test_padded_chunks_do_not_change_the_outputs(model):
    """The compiled encoder pads a short chunk to the fixed batch: views are independent, so
    the real views' features equal those of the unpadded call (eager check of the padding)."""
    video = torch.randn(3, model.cfg.num_frames, 3, model.cfg.image_size, model.cfg.image_size)
    enc = CompiledVideoEncoder(model, batch_size=5, mode="default")
    enc._fn = enc._encode  # eager: the padding logic alone
    with torch.inference_mode():
        ref = model.encode_video(video)
        got = enc(video)
    torch.testing.assert_close(got.embeds, ref.embeds, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got.tokens, ref.tokens, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="larger than batch_size"):
        enc(torch.cat([video, video]))


def test_auto_compile_waits_for_a_long_enough_job(model):
    """compile="auto" runs the first batches eagerly: a short job never pays the compile time."""
    enc = CompiledVideoEncoder(model, batch_size=2, mode="default", eager_calls=2)
    enc._fn = None  # would fail if called: the first two calls must not touch it
    video = torch.randn(2, model.cfg.num_frames, 3, model.cfg.image_size, model.cfg.image_size)
    with torch.inference_mode():
        for _ in range(2):
            assert not enc.compiled
            enc(video)
    assert enc.compiled and enc.calls == 2


@pytest.mark.slow
def test_compiled_pipeline_matches_eager_on_cpu(model):
    """compile=True on the CPU: the same features as eager (fp32), and one compiled shape for
    chunks of any length (padding)."""
    eager = VideoPipeline(model, device="cpu", batch_size=4, compile=False)
    compiled = VideoPipeline(model, device="cpu", batch_size=4, compile=True)
    cfg = model.cfg
    clips = torch.randn(6, cfg.num_frames, 3, cfg.image_size, cfg.image_size)  # chunks 4 + 2
    ref = eager.encode(clips)
    got = compiled.encode(clips)
    torch.testing.assert_close(got.embeds, ref.embeds, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got.tokens, ref.tokens, rtol=1e-4, atol=1e-5)


def test_single_video_calls_after_the_eager_ones_run_exactly_their_views(model):
    """Issue 20: once compile="auto" compiles (after EAGER_CALLS calls), a single video's call
    used to be padded to the full batch (128 views of compute on a GPU for one video). Each call
    now runs exactly its own views; the compiled encoder sees each chunk size as it is."""
    seen: list[int] = []

    def counting(video):
        seen.append(video.shape[0])
        f = model.encode_video(video)
        return f.embeds, f.tokens

    enc = CompiledVideoEncoder(model, batch_size=8, mode="default", eager_calls=16)
    enc._fn = counting  # stands for the compiled graph: what it is called with is what it runs
    cfg = model.cfg
    one_video = torch.randn(3, cfg.num_frames, 3, cfg.image_size, cfg.image_size)  # 3 views
    with torch.inference_mode():
        for _ in range(20):
            out = enc(one_video)
            assert out.embeds.shape[0] == 3
    assert enc.compiled and seen == [3] * (20 - 16)  # calls 17..20 compiled, each 3 views
    # more sizes than MAX_SHAPES: a new size runs at the smallest compiled size that holds it
    from xclip.inference.accelerate import MAX_SHAPES

    with torch.inference_mode():
        for n in range(1, 9):
            enc(one_video[:1].expand(n, *one_video.shape[1:]).contiguous())
    assert len(enc.shapes) <= MAX_SHAPES and max(seen) <= enc.batch_size
