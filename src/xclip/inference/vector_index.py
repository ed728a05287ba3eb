"""The vector index of a moments library: cosine search over many embeddings, on FAISS.

The index type follows the row count and a memory budget, as autofaiss chooses one:

- up to :data:`EXACT_MAX_ROWS` rows whose float32 vectors fit the budget: exact search
  (``IndexFlatIP`` over L2-normalised vectors: the inner product is the cosine);
- above that: an inverted file (``IVF{nlist}``, ``nlist`` about the square root of the row
  count) whose vectors are stored as 8-bit scalars (``SQ8``: a quarter of float32, cosines within
  about 1e-3), or product-quantised (``PQ``) when even those exceed the budget. How many lists a
  query scans (``nprobe``) is tuned when the index is built: the smallest that finds
  :data:`TARGET_RECALL` of the exact top 10 for a sample of the indexed vectors.

Why FAISS and not LanceDB: measured on the same vectors (``xclip-video bench search``,
docs/search.md), FAISS answers a query in a fraction of the time, is one file that
:mod:`xclip.atomic` writes, and installs in 19 MB; incremental adds, deletes and filters are done
by the library around it (:mod:`xclip.inference.moments`). FAISS is an optional dependency
(``pip install 'xclip[search]'``): imported only when an index is built or read.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from xclip.errors import InputError

__all__ = [
    "EXACT_MAX_ROWS",
    "INSTALL_HINT",
    "MEMORY_BUDGET",
    "TARGET_RECALL",
    "IndexPlan",
    "VectorIndex",
    "exact_top",
    "import_faiss",
    "normalized",
    "plan_index",
    "recall_at",
]

#: above this many rows, exact search is no longer "fast enough" on a CPU: a query scans every
#: vector, about 20 ms per 100,000 rows of width 512 on one shared core (docs/search.md)
EXACT_MAX_ROWS = 50_000
#: the default memory budget of an index (bytes)
MEMORY_BUDGET = 1 << 30
#: recall@10 against exact search that ``nprobe`` is tuned to reach on the indexed vectors
TARGET_RECALL = 0.97
INSTALL_HINT = "moment search needs FAISS: pip install 'xclip[search]' (or pip install faiss-cpu)"


def import_faiss():
    """The ``faiss`` module, or an :class:`~xclip.errors.InputError` saying how to install it."""
    # its loader logs each SIMD build it tries at INFO: noise in every command's output
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    try:
        import faiss  # lazy: optional dependency
    except ImportError:
        raise InputError(INSTALL_HINT) from None
    return faiss


def normalized(x: np.ndarray) -> np.ndarray:
    """float32 rows of ``x`` scaled to unit length (zero rows stay zero)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


@dataclass(frozen=True)
class IndexPlan:
    """Which index: ``kind`` ``"flat"`` (exact) or ``"ivf"``; ``spec`` the FAISS factory string;
    ``nlist`` inverted lists (ivf); ``bytes_per_vector`` of the stored codes."""

    kind: str
    spec: str
    nlist: int = 0
    bytes_per_vector: int = 0


def plan_index(
    rows: int,
    dim: int,
    *,
    memory_budget: int = MEMORY_BUDGET,
    exact_max_rows: int = EXACT_MAX_ROWS,
) -> IndexPlan:
    """The index type for ``rows`` vectors of width ``dim`` within ``memory_budget`` bytes."""
    if rows < 0 or dim < 1 or memory_budget < 1:
        raise InputError(f"cannot plan an index of {rows} rows of width {dim}")
    if rows <= exact_max_rows and rows * dim * 4 <= memory_budget:
        return IndexPlan("flat", "Flat", 0, dim * 4)
    nlist = 1 << max(6, min(16, round(math.log2(max(1.0, math.sqrt(rows))))))
    nlist = max(1, min(nlist, rows // 39))  # FAISS wants about 39 training points per list
    if rows * (dim + 8) <= memory_budget:
        return IndexPlan("ivf", f"IVF{nlist},SQ8", nlist, dim)
    # product quantisation: the most sub-quantisers (bytes a vector) that fit the budget
    fit = max(1, memory_budget // max(1, rows) - 8)
    m = max((d for d in range(1, min(dim, 64) + 1) if dim % d == 0 and d <= fit), default=1)
    return IndexPlan("ivf", f"IVF{nlist},PQ{m}", nlist, m)


class VectorIndex:
    """Cosine search over float vectors ``[N, C]`` (ids 0..N-1, the rows as given).

    Build with :meth:`build`; :meth:`search` returns the ``k`` best rows per query, optionally
    among ``allowed`` rows only; :meth:`to_bytes`/:meth:`from_bytes` are the file form.
    """

    def __init__(self, index: Any, plan: IndexPlan, nprobe: int = 1) -> None:
        self.index, self.plan, self.nprobe = index, plan, nprobe

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        *,
        plan: IndexPlan | None = None,
        memory_budget: int = MEMORY_BUDGET,
        train_rows: int = 64,
        seed: int = 0,
        like: VectorIndex | None = None,
    ) -> VectorIndex:
        """An index of ``vectors`` float ``[N, C]`` (normalised here).

        ``plan``: the index type (default :func:`plan_index` of ``N`` and ``memory_budget``);
        ``train_rows``: training points per inverted list (a random sample, ``seed``);
        ``like``: an earlier index of the same plan whose trained lists are reused (an update
        then skips the training: the new rows are assigned to the lists learnt before).
        """
        faiss = import_faiss()
        x = normalized(vectors)
        if x.ndim != 2 or not len(x):
            raise InputError(f"an index needs vectors [N, C] with N >= 1, got {x.shape}")
        if not np.isfinite(x).all():
            raise InputError("the vectors hold NaN or infinite values; rebuild the embeddings")
        plan = plan or plan_index(len(x), x.shape[1], memory_budget=memory_budget)
        if like is not None and like.plan == plan and like.dim == x.shape[1]:
            index = faiss.deserialize_index(faiss.serialize_index(like.index))
            index.reset()  # keeps the trained quantiser, drops the vectors
        else:
            index = faiss.index_factory(x.shape[1], plan.spec, faiss.METRIC_INNER_PRODUCT)
            if not index.is_trained:
                rng = np.random.default_rng(seed)
                n_train = min(len(x), max(plan.nlist * train_rows, 10_000))
                sample = x[np.sort(rng.choice(len(x), n_train, replace=False))]
                ivf = faiss.extract_index_ivf(index)
                ivf.cp.niter = 10  # the lists' quality saturates early; training is most of build
                index.train(sample)
        index.add(x)
        out = cls(index, plan)
        if plan.kind == "ivf":
            out.nprobe = out.tune_nprobe(x, seed=seed)
        return out

    def tune_nprobe(self, x: np.ndarray, *, queries: int = 200, seed: int = 0) -> int:
        """The smallest ``nprobe`` (powers of two) whose recall@10 against exact search reaches
        :data:`TARGET_RECALL`, with ``queries`` of the indexed vectors (normalised ``x``, the
        vectors of this index) as queries, each left out of its own results (else every query
        finds itself in the one list that holds it)."""
        rng = np.random.default_rng(seed + 1)
        pick = rng.choice(len(x), min(queries, len(x)), replace=False)
        truth = _without(exact_top(x, x[pick], 11), pick)
        nprobe = 1
        while nprobe < self.plan.nlist:
            _, ids = self.search(x[pick], 11, nprobe=nprobe, exact_k=True)
            if recall_at(_without(ids, pick), truth) >= TARGET_RECALL:
                break
            nprobe *= 2
        return min(nprobe, self.plan.nlist)

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        allowed: np.ndarray | None = None,
        nprobe: int | None = None,
        exact_k: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores (cosines) and row ids ``[Q, k]`` of the ``k`` best rows per query, best first;
        ``allowed``: bool ``[N]``, only those rows. Fewer than ``k`` found: id ``-1``.
        An inverted file scans ``nprobe`` lists (default: the tuned one), more when ``k`` rows
        need more lists (unless ``exact_k``) or a filter thins them out."""
        faiss = import_faiss()
        q = normalized(np.atleast_2d(queries))
        k = max(1, min(int(k), len(self)))
        params = None
        sel = None
        if allowed is not None:
            allowed = np.asarray(allowed, dtype=bool)
            bits = np.packbits(allowed, bitorder="little")
            sel = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bits))
        if self.plan.kind == "ivf":
            probe = nprobe or self.nprobe
            # enough lists to hold k rows twice over, and more when a filter thins them out
            per_list = max(1.0, len(self) / self.plan.nlist)
            if not exact_k:
                probe = max(probe, math.ceil(2 * k / per_list))
            if allowed is not None:
                probe = math.ceil(probe * len(allowed) / max(1, int(allowed.sum())))
            params = faiss.SearchParametersIVF(nprobe=min(probe, self.plan.nlist), sel=sel)
        elif sel is not None:
            params = faiss.SearchParameters(sel=sel)
        threads = faiss.omp_get_max_threads()
        # a few queries: one thread. A single query split over OpenMP threads spends its time in
        # their barriers when the cores are busy with other work: exact search of 10,000 rows
        # took 197 ms with 2 threads and a few ms with one on the shared 2-core machine
        # (docs/search.md); many queries are split by query, which scales.
        if len(q) < 20 and threads > 1:
            faiss.omp_set_num_threads(1)
        try:
            scores, ids = self.index.search(q, k, params=params)
        finally:
            faiss.omp_set_num_threads(threads)
        return scores, ids

    def memory_bytes(self) -> int:
        """The index's size in memory (its serialised size: the codes, lists and quantiser)."""
        return len(self.to_bytes())

    def to_bytes(self) -> bytes:
        faiss = import_faiss()
        return faiss.serialize_index(self.index).tobytes()

    def info(self) -> dict[str, Any]:
        """What an index file records about its type (:meth:`from_bytes` takes it back)."""
        return {**asdict(self.plan), "nprobe": self.nprobe, "rows": len(self)}

    @classmethod
    def from_bytes(cls, data: bytes, info: dict[str, Any], *, source: str = "index") -> VectorIndex:
        """The index stored as ``data`` with its ``info``; a damaged one is an
        :class:`~xclip.errors.InputError` naming ``source``."""
        faiss = import_faiss()
        try:
            index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
            plan = IndexPlan(
                str(info["kind"]), str(info["spec"]), int(info["nlist"]),
                int(info["bytes_per_vector"]),
            )  # fmt: skip
        except (RuntimeError, KeyError, TypeError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InputError(f"{source} is damaged ({first[:200]}); rebuild it") from None
        return cls(index, plan, int(info.get("nprobe", 1)))


def exact_top(x: np.ndarray, q: np.ndarray, k: int, *, chunk: int = 65536) -> np.ndarray:
    """Row ids ``[Q, k]`` of the exact top ``k`` inner products of queries ``q`` with rows
    ``x`` (both float32, normalised), best first, by blocks of ``chunk`` rows (bounded memory)."""
    best_s = np.zeros((len(q), 0), np.float32)
    best_i = np.zeros((len(q), 0), np.int64)
    for lo in range(0, len(x), chunk):
        block = q @ x[lo : lo + chunk].T  # [Q, chunk]
        ids = np.arange(lo, lo + block.shape[1])
        s = np.concatenate([best_s, block], axis=1)
        i = np.concatenate([best_i, np.broadcast_to(ids, block.shape)], axis=1)
        kk = min(k, s.shape[1])
        top = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        best_s, best_i = np.take_along_axis(s, top, 1), np.take_along_axis(i, top, 1)
    return np.take_along_axis(best_i, np.argsort(-best_s, axis=1), 1)


def _without(ids: np.ndarray, own: np.ndarray) -> np.ndarray:
    """``ids`` ``[Q, k+1]`` without each row's own id ``own[q]`` (the first ``k`` others)."""
    return np.stack([r[r != o][: ids.shape[1] - 1] for r, o in zip(ids, own, strict=True)])


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of each row of ``truth`` (ids ``[Q, k]``) that ``found`` holds."""
    k = truth.shape[1]
    hits = [len(set(f[:k].tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits)) / k
