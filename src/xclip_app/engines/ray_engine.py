"""The ``ray`` engine: Ray Data streams the collection through decoding and preprocessing as
CPU tasks (:class:`~xclip_app.engines.work.ClipPreparer`) into a fixed pool of model actors
(:class:`~xclip_app.engines.work.ModelWorker`, ``num_workers`` of them, each with
``gpus_per_worker`` GPUs or ``cpus_per_worker`` CPUs), with Ray's backpressure between the two;
finished rows stream back to the driver, which writes them.

Without ``address`` a local Ray is started on this machine (its CPUs, at least one per model
worker plus one for decoding); ``address`` (``auto``, ``ray://HOST:10001``, ``HOST:6379``)
joins a running cluster, whose nodes need the same ``xclip`` installed. The model is loaded once
by the driver and shared through Ray's object store, so every actor holds the same weights (also
random ones; their fingerprint is in every row).

Faults: a decoding task or model actor whose process dies is retried or restarted by Ray
(Ray Data's defaults: tasks retried, actors restarted, their unfinished batches run again);
only finished rows reach the driver, so no row is lost or duplicated.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

from xclip_app.engines.window_work import WindowWorker
from xclip_app.engines.work import ClipPreparer, ModelWorker
from xclip_app.exit_codes import UsageError

__all__ = ["DECODE_TASK_MEMORY", "INSTALL_HINT", "import_ray", "init_ray", "run_ray"]

# what one decoding task holds: a decoder, the sampled frames and the preprocessed views
DECODE_TASK_MEMORY = 512 * 2**20
INSTALL_HINT = "--engine ray needs Ray: pip install 'xclip[ray]' (ray[data] and pyarrow)"


def import_ray():
    """``ray`` and ``ray.data``, or a :class:`UsageError` saying how to install them."""
    try:
        import ray  # lazy: optional dependency
        import ray.data  # lazy: optional dependency  # noqa: F401
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    return ray


def init_ray(address: str | None = None, *, num_workers: int = 1, cpus_per_worker: float = 1):
    """Connect to the cluster at ``address``, or start a local Ray (quiet, no dashboard) when
    none is given and none is running in this process."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                          "logging_level": "ERROR", "configure_logging": True}  # fmt: skip
    if address:
        try:
            ray.init(address=address, **kw)
        except ConnectionError as e:
            raise UsageError(
                f"--address {address}: no Ray cluster there ({e}); start one with `ray start "
                f"--head` or leave --address out for a local Ray"
            ) from None
    else:
        cpus = os.cpu_count() or 1
        ray.init(num_cpus=max(cpus, int(num_workers * cpus_per_worker) + 1), **kw)
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # per-run INFO lines, bar notices
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # the command shows its own (rows written)
    ctx.print_on_execution_start = False
    return ray


class _ModelActor:
    """A Ray Data actor: one :class:`ModelWorker` per actor, built from the shared model."""

    def __init__(self, model_ref: list, kwargs: dict[str, Any], threads: int) -> None:
        import ray  # lazy: optional dependency
        import torch  # lazy: CLI start-up

        if threads > 0:
            torch.set_num_threads(threads)
        device = kwargs.get("device")
        if device is None and ray.get_gpu_ids():
            kwargs = {**kwargs, "device": "cuda"}
        # embed --window: window rows (xclip_app.engines.window_work), else one row a video
        worker = WindowWorker if kwargs.get("task") == "windows" else ModelWorker
        self.worker = worker(ray.get(model_ref[0]), **kwargs)

    def __call__(self, batch):
        import pyarrow as pa  # lazy: optional dependency

        from xclip_app.parquet_results import result_schema  # lazy: CLI start-up

        rows = self.worker.rows(batch.to_pylist())
        return pa.Table.from_pylist(rows, schema=result_schema(self.worker.task))


def run_ray(
    paths: Sequence[str],
    preparer: ClipPreparer,
    model: Any,
    worker_kwargs: dict[str, Any],
    *,
    address: str | None = None,
    num_workers: int = 1,
    gpus_per_worker: float = 0,
    cpus_per_worker: float = 1,
    batch_videos: int = 4,
) -> Iterator[list[dict[str, Any]]]:
    """Result rows (lists, as they finish, in no fixed order) of ``paths``."""
    if num_workers < 1:
        raise UsageError(f"--num-workers must be >= 1, got {num_workers}")
    if gpus_per_worker < 0 or cpus_per_worker <= 0:
        raise UsageError("--gpus-per-worker must be >= 0 and --cpus-per-worker > 0")
    ray = init_ray(address, num_workers=num_workers, cpus_per_worker=cpus_per_worker)
    if not paths:
        return
    model_ref = ray.put(model)
    ds = ray.data.from_items(
        [{"path": p} for p in paths], override_num_blocks=max(1, min(len(paths), 200))
    )
    # decoding tasks reserve memory (the model actors do not): besides sizing the tasks, this
    # keeps them apart from the actors (Ray Data fuses a map into the next actor stage when
    # their remote args are equal: decoding would then run inside the model actors)
    ds = ds.map(preparer, num_cpus=1, memory=DECODE_TASK_MEMORY)
    ds = ds.map_batches(
        _ModelActor,
        fn_constructor_kwargs={
            "model_ref": [model_ref],
            "kwargs": worker_kwargs,
            "threads": 0 if gpus_per_worker else max(1, int(cpus_per_worker)),
        },
        compute=ray.data.ActorPoolStrategy(size=num_workers),
        batch_size=batch_videos,
        batch_format="pyarrow",
        num_gpus=gpus_per_worker or None,
        num_cpus=None if gpus_per_worker else cpus_per_worker,
    )  # Ray Data's actors: max_restarts=-1, max_task_retries=-1 (a dead actor is replaced)
    for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        yield batch.to_pylist()
