"""The paper's evaluation protocols as list files: official UCF-101/HMDB-51 splits
(:mod:`.ucf_hmdb`), K videos per class for few-shot training (:mod:`.kshot`), and the
Kinetics-600 classes not in Kinetics-400 with their zero-shot subsets (:mod:`.kinetics600`).

Pure functions plus writers in the library's annotation formats (:mod:`xclip.data.annotations`);
the command line is ``xclip-video splits``.
"""
