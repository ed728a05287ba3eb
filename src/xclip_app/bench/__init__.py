"""Benchmarks of ``xclip-video bench``: the timing harness, the model benchmark against
``transformers.XCLIPModel`` and the data-loading benchmark.

Kept free of imports so that ``xclip-video --help`` can read the clip catalogue
(:mod:`xclip_app.bench.clips`) without loading torch.
"""
