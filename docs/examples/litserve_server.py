"""Serve an exported X-CLIP folder behind LitServe (docs/deploy.md).

    pip install 'xclip[onnx,litserve]'
    xclip-video export xclip_b32_8f.kinetics400 -o b32-onnx --labels-file labels.txt
    python docs/examples/litserve_server.py b32-onnx --port 8000
    curl -s -X POST 127.0.0.1:8000/predict -H 'content-type: application/json' \
        -d "{\"video\": \"$(base64 -w0 clip.mp4)\", \"top_k\": 3}"

The labels and their text features come from the export's label bank (export with --labels or
--labels-file), so the server runs no text tower per request. Decoding, sampling and
preprocessing are xclip's, the model runs on ONNX Runtime (or the torch.export programs).
"""

from __future__ import annotations

import argparse
import base64
import binascii

import litserve as ls
from fastapi import HTTPException

from xclip.data.video import VideoDecodeError
from xclip.export import load_exported
from xclip.inference import VideoClassifier


class XCLIPExportAPI(ls.LitAPI):
    """POST ``{"video": base64 bytes of a video file, "top_k": int}`` ->
    ``{"labels": [...], "probs": [...]}``."""

    def __init__(self, export_dir: str, threads: int = 0) -> None:
        super().__init__()
        self.export_dir = export_dir
        self.threads = threads

    def setup(self, device: str) -> None:
        model = load_exported(self.export_dir, threads=self.threads)
        bank = model.label_bank
        if bank is None:
            raise SystemExit(f"{self.export_dir} has no label bank; export it with --labels")
        self.clf = VideoClassifier(model, bank.labels, bank.template, device="cpu")

    def decode_request(self, request: dict) -> tuple[bytes, int]:
        try:
            data = base64.b64decode(request["video"], validate=True)
            top_k = int(request.get("top_k", 5))
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise HTTPException(
                400, 'send {"video": "<base64 of a video file>", "top_k": 5}'
            ) from None
        return data, top_k

    def predict(self, x: tuple[bytes, int]) -> dict:
        data, top_k = x
        try:
            pred = self.clf(data)
        except VideoDecodeError as e:
            raise HTTPException(422, f"not a readable video: {e}") from None
        return {"labels": list(pred.labels[:top_k]), "probs": list(pred.probs[:top_k])}

    def encode_response(self, output: dict) -> dict:
        return output


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("export_dir", help="a folder written by xclip-video export ... --labels")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default local)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0 = default)")
    args = p.parse_args()
    server = ls.LitServer(XCLIPExportAPI(args.export_dir, args.threads), accelerator="cpu")
    server.run(host=args.host, port=args.port, generate_client_file=False)


if __name__ == "__main__":
    main()
