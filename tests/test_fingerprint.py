"""The weights fingerprint (xclip.fingerprint): every tensor counts, once per state of the weights,
and a fingerprint of an older xclip is recognised with what to do.

The tests of the first group fail against the fingerprint before ``v2``, which hashed 4 tensors
(``text_projection``, ``visual.proj``, ``visual.conv1.weight``, ``logit_scale``) cast to float32.
The int8-against-fp32 export test is ``test_export.py::test_int8_export_keeps_the_ranking_close``
(slow: it quantises).
"""

from __future__ import annotations

import copy

import pytest
import torch

import xclip
from xclip.errors import InputError
from xclip.inference import VideoIndex
from xclip.inference.loading import model_fingerprint

# what the fingerprint before v2 hashed
OLD_TENSORS = ("text_projection", "visual.proj", "visual.conv1.weight", "logit_scale")


def _tiny(seed: int = 0) -> xclip.XCLIP:
    torch.manual_seed(seed)
    model = xclip.create_model("xclip_test")
    with torch.no_grad():  # non-trivial prompt generator and MIT (zero-initialised otherwise)
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


# ------------------------------------------------------------------------------------------------
# every tensor counts


def test_models_that_differ_in_every_block_but_the_old_four_tensors_differ():
    a, b = _tiny(0), _tiny(1)
    with torch.no_grad():
        for name in OLD_TENSORS:
            b.get_parameter(name).copy_(a.get_parameter(name))
    assert model_fingerprint(a) != model_fingerprint(b)
    assert model_fingerprint(a) == model_fingerprint(copy.deepcopy(a))


def test_each_parameter_alone_changes_the_fingerprint():
    model = _tiny()
    base = model_fingerprint(model)
    unseen = []
    for name, p in model.named_parameters():
        saved = p.detach().clone()
        with torch.no_grad():
            p.add_(1.0)
        if model_fingerprint(model) == base:
            unseen.append(name)
        with torch.no_grad():
            p.copy_(saved)
        # restored bytes give the same fingerprint again (no stale cached value)
        assert model_fingerprint(model) == base, name
    assert not unseen, f"{len(unseen)} tensors do not count, e.g. {unseen[:3]}"


def test_buffers_dtype_and_names_count():
    model = _tiny()
    base = model_fingerprint(model)
    assert model_fingerprint(copy.deepcopy(model).half()) != base  # the same values in fp16
    with_buffer = copy.deepcopy(model)
    with_buffer.visual.register_buffer("extra", torch.zeros(3))
    assert model_fingerprint(with_buffer) != base
    with torch.no_grad():
        with_buffer.visual.get_buffer("extra").fill_(1.0)
    assert model_fingerprint(with_buffer) not in (base, model_fingerprint(copy.deepcopy(model)))


# ------------------------------------------------------------------------------------------------
# computed once per state of the weights


def test_computed_once_per_state_of_the_weights(monkeypatch):
    import xclip.fingerprint as fingerprint

    calls = []
    real = fingerprint.hash_tensors
    monkeypatch.setattr(fingerprint, "hash_tensors", lambda ts: calls.append(1) or real(ts))
    model, other = _tiny(0), _tiny(1)
    first = model_fingerprint(model)
    assert model_fingerprint(model) == first and model_fingerprint(model.float()) == first
    assert len(calls) == 1  # the second and third call read no bytes
    # an optimizer step writes in place: a new fingerprint
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.logit_scale.grad = torch.ones_like(model.logit_scale)
    opt.step()
    stepped = model_fingerprint(model)
    assert stepped != first and len(calls) == 2
    # loading other weights into the same object gives their fingerprint
    model.load_state_dict(other.state_dict())
    assert model_fingerprint(model) == model_fingerprint(other)
    assert fingerprint.weights_fingerprint(model, cached=False) == model_fingerprint(other)


def test_weights_made_under_inference_mode_are_hashed_every_time():
    # no version counter to key a cache on: correct, not cached
    with torch.inference_mode():
        model = _tiny()
    first = model_fingerprint(model)
    with torch.inference_mode():
        model.logit_scale.add_(1.0)  # in place, no version bump
    assert model_fingerprint(model) != first


def test_fingerprint_has_a_version_prefix():
    from xclip.fingerprint import is_current_fingerprint

    fp = model_fingerprint(_tiny())
    assert fp.startswith("v2:") and len(fp) == len("v2:") + 16 and is_current_fingerprint(fp)
    assert not is_current_fingerprint("0123456789abcdef") and not is_current_fingerprint(None)


def test_export_fingerprint_depends_on_the_quantisation():
    from xclip.fingerprint import export_fingerprint

    fp = model_fingerprint(_tiny())
    assert export_fingerprint(fp, None) == fp  # float32 graphs: the same weights
    assert export_fingerprint(fp, "int8-dynamic") not in (fp, export_fingerprint(fp, None))
    assert export_fingerprint(fp, "int8-dynamic").startswith("v2:")


# ------------------------------------------------------------------------------------------------
# an older xclip's fingerprint is recognised, with what to do


def test_index_with_an_old_fingerprint_says_rebuild():
    model = _tiny()
    index = VideoIndex(
        paths=["a.mp4"],
        embeds=torch.zeros(1, model.cfg.embed_dim),
        model={"source": "tiny", "fingerprint": "0123456789abcdef"},
    )
    with pytest.raises(InputError) as e:
        index.check_model(model)
    msg = str(e.value)
    assert "\n" not in msg and "older xclip" in msg and "0123456789abcdef" in msg
    assert "xclip-video embed" in msg and "--overwrite" in msg
    # a current index of other weights keeps its own message
    index.model["fingerprint"] = model_fingerprint(_tiny(1))
    with pytest.raises(InputError, match="other model weights"):
        index.check_model(model)
    index.model["fingerprint"] = model_fingerprint(model)
    index.check_model(model)
