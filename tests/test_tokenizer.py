"""``xclip.tokenize`` gives the same ids as open_clip's (= OpenAI's) CLIP tokenizer."""

from __future__ import annotations

import pytest
import torch

import xclip
from xclip.tokenizer import CONTEXT_LENGTH, get_tokenizer

TEXTS = [
    "a photo of a cat",
    "eating spaghetti",
    "Crème brûlée à la française, naïve café",
    "rock &amp; roll &lt;3 &quot;quoted&quot; &#39;single&#39;",
    "double &amp;amp; escaped",
    "   lots    of\t\twhite \n space   ",
    "Hello, World!!! ... ?!? (brackets) [x] {y} -- dashes -- under_scores",
    "it's they're we've I'm you'll he'd",
    "numbers 1234567 3.14159 1st 2nd 10,000 -5 1e-3",
    "ApplyEyeMakeup",
    "BlowDryHair PlayingDaf YoYo",
    "Kinetics: abseiling; air drumming; answering questions",
    "",
    " ",
    "x" * 1000,
    "a very long sentence " * 60,
    "日本語のテキスト 中文文本",
    "Русский текст и ελληνικά",
    "العربية עברית हिन्दी",
    "emoji 🎉🔥 👍🏽 family 👨‍👩‍👧",
    "mixed ÅNGSTRÖM ǅ ß ﬁ ligature",
    "tab\tand\u00a0nbsp\u200bzero width",
]


@pytest.fixture(scope="module")
def open_clip_tokenizer():
    open_clip = pytest.importorskip("open_clip")
    return open_clip.get_tokenizer("ViT-B-32")


def test_ids_identical_to_open_clip(open_clip_tokenizer):
    ours = xclip.tokenize(TEXTS)
    theirs = open_clip_tokenizer(TEXTS)
    assert ours.dtype == torch.long and ours.shape == (len(TEXTS), CONTEXT_LENGTH)
    for i, text in enumerate(TEXTS):
        assert torch.equal(ours[i], theirs[i]), (text, ours[i], theirs[i])


@pytest.mark.parametrize("text", TEXTS)
def test_encode_identical_to_open_clip(open_clip_tokenizer, text):
    assert get_tokenizer().encode(text) == open_clip_tokenizer.encode(text)


def test_special_token_literals_follow_openai(open_clip_tokenizer):
    """The one documented divergence: OpenAI's tokenizer (which we follow) maps the literal strings
    ``<|startoftext|>``/``<|endoftext|>`` in a text to the special ids; open_clip names its special
    tokens ``<start_of_text>``/``<end_of_text>`` and splits OpenAI's spelling into characters."""
    text = "<|startoftext|> special <|endoftext|> tokens"
    assert get_tokenizer().encode(text) == [49406, 1689, 49407, 23562]
    assert 49406 not in open_clip_tokenizer.encode(text)
    # every other text is identical (see test_ids_identical_to_open_clip)


def test_special_ids_and_padding():
    tok = get_tokenizer()
    assert tok.sot_token == 49406 and tok.eot_token == 49407 and tok.vocab_size == 49408
    ids = xclip.tokenize("a photo of a cat")[0]
    assert ids[:7].tolist() == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert ids[7:].eq(0).all()
    assert xclip.tokenize("")[0, :3].tolist() == [49406, 49407, 0]


def test_truncation():
    ids = xclip.tokenize("x " * 1000)[0]
    assert ids[0] == 49406 and ids[-1] == 49407 and ids.ne(0).all()
    with pytest.raises(ValueError, match="context"):
        xclip.tokenize("word " * 100, truncate=False)
    # fits exactly: 75 words + SOT + EOT
    assert xclip.tokenize("word " * 75, truncate=False)[0, -1] == 49407


def test_context_length_argument():
    ids = xclip.tokenize(["eating spaghetti"], context_length=16)
    assert ids.shape == (1, 16)


def test_single_string_and_type_errors():
    assert xclip.tokenize("abc").shape == (1, CONTEXT_LENGTH)
    with pytest.raises(TypeError):
        xclip.tokenize(["ok", 3])  # type: ignore[list-item]


@pytest.mark.parametrize(
    "text",
    ["a photo of a cat", "eating spaghetti", "playing basketball", "apply eye makeup"],
)
def test_decode_round_trip(text):
    tok = get_tokenizer()
    assert tok.decode(tok.encode(text)) == text


def test_decode_matches_open_clip(open_clip_tokenizer):
    tok = get_tokenizer()
    for text in TEXTS:
        ids = tok.encode(text)
        assert tok.decode(ids) == open_clip_tokenizer.decode(ids).strip(), text


def test_decode_normalises_like_clip():
    tok = get_tokenizer()
    assert tok.decode(tok.encode("  Hello,   WORLD! ")) == "hello , world !"
    assert tok.decode(tok.encode("Crème brûlée")) == "crème brûlée"
