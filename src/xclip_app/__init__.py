"""The xclip application: the ``xclip-video`` command line (built on the ``xclip`` library)."""
