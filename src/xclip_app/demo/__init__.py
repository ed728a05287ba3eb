"""The demo benchmark (``xclip-video demo``): the paper's story in miniature on procedural videos.

See ``docs/demo.md``; :mod:`~xclip_app.demo.pipeline` runs the stages.
"""
