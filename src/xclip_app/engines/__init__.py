"""Engines that work through a collection of videos: ``local`` (this process, decoding threads)
and ``ray`` (decoding and preprocessing as Ray tasks, the model in a Ray actor pool on CPUs or
GPUs, on this machine or a cluster). Both run the same per-video code
(:mod:`xclip_app.engines.work`) and write the same rows (:mod:`xclip_app.parquet_results`).
"""
