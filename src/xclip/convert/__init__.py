"""Conversion functions between checkpoint formats and this library's (original-layout) keys.

Every foreign format is turned into the original X-CLIP key layout first (which is this library's
native layout) and then loaded strictly.
"""
