"""Label texts and the prompt template they are put in, checked before the text tower sees them."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F

from xclip.errors import InputError
from xclip.tokenizer import CONTEXT_LENGTH, get_tokenizer

logger = logging.getLogger(__name__)

__all__ = ["check_labels", "check_template", "check_templates", "ensemble_text_features", "prompts"]


def _label_key(label: str) -> str:
    # The CLIP tokenizer lower-cases and collapses whitespace, so these labels are the same text.
    return " ".join(label.lower().split())


def check_labels(labels: Iterable[str]) -> list[str]:
    """Stripped labels, or ``ValueError`` for an empty set, an empty label, duplicates or a
    label longer than the text encoder reads (see :func:`prompts`).

    Labels that differ only in case or spacing count as duplicates: the tokenizer lower-cases
    and collapses whitespace, so they would get identical embeddings and split the probability.
    One string (``"a,b"``) or an item that is not a string raises ``TypeError``: a string is
    never iterated character by character.
    """
    if isinstance(labels, str | bytes | bytearray):
        raise TypeError(
            f"labels must be a list of strings, not one string ({labels!r:.60}); split it "
            f"first, e.g. labels.split(',')"
        )
    try:
        items = list(labels)
    except TypeError:
        raise TypeError(f"labels must be a list of strings, got {type(labels).__name__}") from None
    wrong = [
        f"{i + 1} ({type(lb).__name__})" for i, lb in enumerate(items) if not isinstance(lb, str)
    ]
    if wrong:
        raise TypeError(
            f"labels must be strings; the label(s) at position {', '.join(wrong)} are not"
        )
    out = [lb.strip() for lb in items]
    if not out:
        raise InputError("no labels given; give at least two label texts, e.g. 'cooking,dancing'")
    empty = [i + 1 for i, lb in enumerate(out) if not lb]
    if empty:
        raise InputError(f"label(s) at position {empty} are empty; remove them")
    seen: dict[str, int] = {}
    dups = []
    for i, lb in enumerate(out):
        key = _label_key(lb)
        if key in seen:
            dups.append(f"{lb!r} (positions {seen[key] + 1} and {i + 1})")
        else:
            seen[key] = i
    if dups:
        raise InputError(
            f"duplicate labels: {', '.join(dups)}; give each label once (case and spacing are "
            f"ignored by the tokenizer)"
        )
    prompts(out, ["{}"])  # each label fits the text encoder (with a template: prompts())
    if len(out) == 1:
        logger.warning("only one label given: its probability is always 1; add alternatives")
    return out


def check_template(template: str) -> str:
    """``template`` unchanged, or ``ValueError`` unless it holds ``{}`` (where the label goes)
    exactly once."""
    if not isinstance(template, str) or template.count("{}") != 1:
        raise InputError(
            f"template must contain '{{}}' exactly once, where the label goes "
            f"(e.g. 'a video of a person {{}}'), got {template!r}"
        )
    return template


def check_templates(templates: str | Sequence[str]) -> list[str]:
    """One template or several (a label-text ensemble) as a checked list: each holds ``{}``
    once, none is repeated, at least one is given."""
    items = [templates] if isinstance(templates, str) else list(templates)
    if not items:
        raise InputError("no template given; give at least one, e.g. 'a video of a person {}'")
    out = [check_template(t) for t in items]
    seen = set()
    for t in out:
        if t in seen:
            raise InputError(f"template {t!r} is given twice; give each template once")
        seen.add(t)
    return out


def _short(text: str, n: int = 40) -> str:
    return repr(text if len(text) <= n else text[:n] + "...")


def prompts(labels: Sequence[str], templates: Sequence[str], *, what: str = "label") -> list[str]:
    """The texts of every (template, label), template-major: ``len(templates) * len(labels)``
    strings, the order :func:`ensemble_text_features` expects.

    A text longer than the text encoder reads (:data:`~xclip.tokenizer.CONTEXT_LENGTH` tokens
    with its start and end tokens) raises ``InputError`` naming the ``what`` (label, query) and
    the template, and showing where it would be cut: cut silently, two long labels that differ
    only at their ends would become the same label.
    """
    texts = [t.replace("{}", lb) for t in templates for lb in labels]
    tokenizer = get_tokenizer()
    room = CONTEXT_LENGTH - 2  # the start and end tokens
    for i, text in enumerate(texts):
        ids = tokenizer.encode(text)
        if len(ids) > room:
            t, k = divmod(i, len(labels))
            kept = tokenizer.decode(ids[:room])
            where = f"{what} {k + 1} ({_short(labels[k])})" if len(labels) > 1 else what
            if templates[t] != "{}":
                where += f" in template {_short(templates[t])}"
            raise InputError(
                f"{where} is {len(ids) + 2} tokens, more than the text encoder's "
                f"{CONTEXT_LENGTH} tokens: it would be cut after '...{kept[-40:]}' (dropping "
                f"'{tokenizer.decode(ids[room:])[:40]}...'); shorten it"
            )
    return texts


def ensemble_text_features(features: torch.Tensor, num_templates: int) -> torch.Tensor:
    """Text features ``[M*K, C]`` of M templates x K labels (template-major, see :func:`prompts`)
    -> one feature per label ``[K, C]``: the mean direction of the M L2-normalised features (the
    "Ensemble" of the X-CLIP paper's Table 9, CLIP's prompt ensembling), rescaled to their mean
    norm so that the video-specific prompt generator, which adds to the unnormalised text
    feature, sees the scale it was trained with. One template returns ``features`` unchanged."""
    if num_templates == 1:
        return features
    m = num_templates
    if features.ndim != 2 or features.shape[0] % m:
        raise ValueError(
            f"features {tuple(features.shape)} are not {m} templates x K labels ([M*K, C])"
        )
    f = features.view(m, features.shape[0] // m, features.shape[1])  # [M, K, C]
    norm = f.norm(dim=-1, keepdim=True).mean(dim=0)  # [K, 1]
    mean = F.normalize(f, dim=-1).mean(dim=0)  # [K, C]
    return F.normalize(mean, dim=-1) * norm
