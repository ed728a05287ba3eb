"""The run's data loaders, training and evaluation, built from a :class:`RunConfig` through
:func:`xclip.data.build_dataloader`, the one way the project builds loaders.

Training uses a :class:`~.sampler.ResumableSampler` (a shuffled, sharded order per epoch that a
mid-epoch resume can enter part-way) and full batches only, as the original; evaluation reads
every video of a list exactly once over all processes.
"""

from __future__ import annotations

import xclip
from xclip.data import VideoDataset, build_dataloader
from xclip.data.loader import VideoDataLoader
from xclip.data.transforms import TrainTransform

from .config import RunConfig
from .distributed import DistInfo
from .sampler import ResumableSampler

__all__ = ["build_eval_loader", "build_train_loader"]


def build_train_loader(
    cfg: RunConfig, info: DistInfo, preprocess: xclip.PreprocessConfig
) -> VideoDataLoader:
    """``data.train_file`` with the ``aug.*`` augmentation, batches of ``train.batch_size`` per
    process; unreadable videos are replaced by other samples (``data.max_bad_fraction``)."""
    a = cfg.aug
    dataset = VideoDataset(
        cfg.data.train_file,
        cfg.data.root or None,
        cfg.data.label_list,
        preprocess=preprocess,
        mode="train",
        transform=TrainTransform.from_preprocess(
            preprocess, flip_p=a.flip, jitter_p=a.color_jitter, grayscale_p=a.gray_scale
        ),
        backend=cfg.data.backend,
        seed=cfg.train.seed,
        max_bad_fraction=cfg.data.max_bad_fraction,
        check_files=cfg.data.check_files,
    )
    sampler = ResumableSampler(len(dataset), info.world_size, info.rank, seed=cfg.train.seed)
    return build_dataloader(
        dataset,
        batch_size=cfg.train.batch_size,
        workers=cfg.data.workers,
        train=True,  # drop_last, as the original: every epoch sees the same number of full batches
        sampler=sampler,
        pin_memory=info.device.type == "cuda",
    )


def build_eval_loader(
    cfg: RunConfig,
    info: DistInfo,
    preprocess: xclip.PreprocessConfig,
    val_file: str,
    label_list: str,
    *,
    num_clips: int,
    num_crops: int,
    view_mode: str,
    root: str | None = None,
) -> VideoDataLoader:
    """``val_file`` with ``num_clips x num_crops`` views per video, ``test.batch_size`` per
    process; unreadable videos fail the pass, or are skipped and listed with ``data.skip_bad``."""
    dataset = VideoDataset(
        val_file,
        (root if root is not None else cfg.data.root) or None,
        label_list,
        preprocess=preprocess,
        mode="test",
        num_clips=num_clips,
        num_crops=num_crops,
        view_mode=view_mode,
        backend=cfg.data.backend,
        seed=cfg.train.seed,
        check_files=cfg.data.check_files,
    )
    return build_dataloader(
        dataset,
        batch_size=cfg.test.batch_size,
        workers=cfg.data.workers,
        train=False,
        distributed=info.distributed,
        rank=info.rank,
        world_size=info.world_size,
        skip_bad=cfg.data.skip_bad,
        persistent_workers=False,
    )
