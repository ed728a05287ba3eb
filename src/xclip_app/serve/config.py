"""What a server needs besides the classifier (``xclip-video serve`` fills it from its options)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from xclip.errors import InputError

__all__ = ["ServeConfig"]


@dataclass
class ServeConfig:
    """Sizes in bytes, times in seconds."""

    model_name: str = ""
    labels: list[str] = field(default_factory=list)
    template: str = "{}"
    videos_dir: Path | None = None
    max_upload_bytes: int = 100 * 1024 * 1024
    top_k: int = 0  # 0 = all labels
    thumb_height: int = 96
    allow_hosts: list[str] = field(default_factory=list)  # --allow-host, beyond the defaults
    # open connections; more get a 503 at once. Waiting connections cost a few kB each on the
    # event loop (no thread), so the cap is high enough for 200 held half-open ones
    max_connections: int = 512
    max_upload_memory_bytes: int = 200 * 1024 * 1024  # upload bytes held at once, all requests
    request_timeout: float = 10.0  # the request line and headers (and a keep-alive wait)
    body_timeout: float = 30.0  # grace for a body, plus its size at MIN_UPLOAD_RATE
    decode_timeout: float = 120.0  # FFmpeg, per call on one video
    max_pixels: int = 3840 * 2160  # width x height of a frame (4K UHD)
    decode_workers: int = 2  # threads decoding videos, outside the model's thread
    max_batch_views: int = 0  # views per model call (0: the classifier's batch_size)
    batch_wait: float = 0.01  # seconds the first request of a batch waits for others
    max_windows: int = 2000  # timeline windows of one request

    def check(self) -> None:
        """``InputError`` for settings that cannot work together."""
        if self.videos_dir is not None:
            self.videos_dir = Path(self.videos_dir)
            if not self.videos_dir.is_dir():
                raise InputError(f"--videos-dir {self.videos_dir} is not a folder")
        if self.max_connections < 1:
            raise InputError(f"--max-connections must be >= 1, got {self.max_connections}")
        if self.max_upload_memory_bytes < self.max_upload_bytes:
            raise InputError(
                f"--max-upload-memory-mb ({self.max_upload_memory_bytes / 2**20:g}) must be at "
                f"least --max-upload-mb ({self.max_upload_bytes / 2**20:g}), or no upload of "
                f"the largest size could ever be held"
            )
        if self.max_pixels < 1 or self.decode_workers < 1 or self.max_windows < 1:
            raise InputError("--max-pixels, --decode-workers and --max-windows must be >= 1")
