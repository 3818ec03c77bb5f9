"""Finished audio: the deliverable made from a take or a rendered script.

`formats` (file types, bit rates, sample rates, writing), `resample`,
`loudness` (measuring and mastering), `trim` (ends and long pauses),
`subtitles` (SRT/VTT cues), `m4b` (AAC with chapters, through PyAV) and
`deliver` (the whole chain, in the order it must run). Nothing here is
imported at the studio's start-up: soundfile, soxr, pyloudnorm and PyAV load
when a file is finished.
"""
