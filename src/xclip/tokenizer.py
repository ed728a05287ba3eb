"""CLIP's byte-level BPE tokenizer, producing the same ids as OpenAI's ``clip.tokenize``.

The merge table ``bpe_simple_vocab_16e6.txt.gz`` is OpenAI CLIP's (MIT licence), shipped with this
package so tokenisation works offline.
"""

from __future__ import annotations

import gzip
import html
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import ftfy
import regex as re
import torch

from xclip.errors import InputError

VOCAB_FILE = Path(__file__).with_name("bpe_simple_vocab_16e6.txt.gz")
SOT = "<|startoftext|>"
EOT = "<|endoftext|>"
CONTEXT_LENGTH = 77
_NUM_MERGES = 49152 - 256 - 2


@lru_cache
def _byte_alphabet() -> dict[int, str]:
    """Reversible map from the 256 byte values to printable unicode characters.

    Printable Latin-1 bytes map to themselves; the others are shifted above 255 so that no BPE
    symbol is whitespace or a control character.
    """
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    table: dict[int, str] = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def _clean(text: str) -> str:
    text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return re.sub(r"\s+", " ", text).strip().lower()


class Tokenizer:
    """CLIP BPE tokenizer: ``tokenizer(["a", "b"])`` -> ``LongTensor [K, 77]``."""

    def __init__(self, vocab_file: str | Path = VOCAB_FILE) -> None:
        with gzip.open(vocab_file, "rt", encoding="utf-8") as f:
            lines = f.read().split("\n")
        merges = [tuple(line.split()) for line in lines[1 : _NUM_MERGES + 1]]
        symbols = list(_byte_alphabet().values())
        symbols = symbols + [s + "</w>" for s in symbols]
        symbols += ["".join(m) for m in merges]
        symbols += [SOT, EOT]
        self.encoder: dict[str, int] = {s: i for i, s in enumerate(symbols)}
        self.decoder: dict[int, str] = {i: s for s, i in self.encoder.items()}
        self.merge_rank: dict[tuple[str, str], int] = {m: i for i, m in enumerate(merges)}
        self.byte_encoder = _byte_alphabet()
        self.byte_decoder = {c: b for b, c in self.byte_encoder.items()}
        self.sot_token = self.encoder[SOT]
        self.eot_token = self.encoder[EOT]
        self.vocab_size = len(self.encoder)
        self._cache: dict[str, list[str]] = {SOT: [SOT], EOT: [EOT]}
        self._split = re.compile(
            r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
            re.IGNORECASE,
        )

    def _bpe(self, word: str) -> list[str]:
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:
            pairs = {(parts[i], parts[i + 1]) for i in range(len(parts) - 1)}
            best = min(pairs, key=lambda p: self.merge_rank.get(p, float("inf")))
            if best not in self.merge_rank:
                break
            merged: list[str] = []
            i = 0
            while i < len(parts):
                if i < len(parts) - 1 and (parts[i], parts[i + 1]) == best:
                    merged.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        self._cache[word] = parts
        return parts

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without start/end tokens."""
        ids: list[int] = []
        for piece in self._split.findall(_clean(text)):
            mapped = "".join(self.byte_encoder[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[s] for s in self._bpe(mapped))
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text of the token ``ids`` (word ends ``</w>`` become spaces; outer spaces stripped)."""
        text = "".join(self.decoder[int(i)] for i in ids)
        raw = bytearray(self.byte_decoder[c] for c in text if c in self.byte_decoder)
        return raw.decode("utf-8", errors="replace").replace("</w>", " ").strip()

    def __call__(
        self,
        texts: str | Sequence[str],
        context_length: int = CONTEXT_LENGTH,
        truncate: bool = True,
    ) -> torch.Tensor:
        """Tokenise ``texts`` into ``LongTensor [K, context_length]`` (zero padded).

        Text longer than the context is cut and its last id set to the end token (``truncate=True``,
        as open_clip); with ``truncate=False`` it raises instead (OpenAI's default).
        """
        if isinstance(texts, str):
            texts = [texts]
        out = torch.zeros(len(texts), context_length, dtype=torch.long)
        for row, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts must be strings, got {type(text).__name__} at index {row}")
            ids = [self.sot_token, *self.encode(text), self.eot_token]
            if len(ids) > context_length:
                if not truncate:
                    raise InputError(
                        f"text {text[:40]!r}... has {len(ids)} tokens, more than the context "
                        f"length {context_length}; shorten it or pass truncate=True"
                    )
                ids = ids[:context_length]
                ids[-1] = self.eot_token
            out[row, : len(ids)] = torch.tensor(ids)
        return out


@lru_cache(maxsize=1)
def get_tokenizer() -> Tokenizer:
    """The shared CLIP tokenizer (loaded once)."""
    return Tokenizer()


def tokenize(
    texts: str | Sequence[str], context_length: int = CONTEXT_LENGTH, truncate: bool = True
) -> torch.Tensor:
    """CLIP token ids ``LongTensor [K, context_length]`` for ``texts``; identical to OpenAI's."""
    return get_tokenizer()(texts, context_length=context_length, truncate=truncate)
