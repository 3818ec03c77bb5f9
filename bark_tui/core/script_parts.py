"""A script take's segment files: one ``.npz`` per segment (tokens and audio), and stitching.

They live in a parts folder inside the takes folder, named in the take's
``segments`` JSON, which is what lets one segment be re-made and the take
re-stitched without touching the others.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bark_engine.config import SAMPLE_RATE
from bark_engine.scripts.render import FADE_S, read_part, write_part
from bark_engine.scripts.script import Segment


def parts_dir_for(take: Any) -> Path | None:
    """The folder holding a script take's segment files (None if not a script take)."""
    if not take.segments:
        return None
    name = take.segments[0].get("parts")
    if not isinstance(name, str) or "/" in name or "\\" in name or name.startswith("."):
        return None
    return Path(take.takes_dir) / name


def save_segment(folder: Path, index: int, seed: int, semantic, coarse, fine,
                 audio: np.ndarray) -> str:
    """Atomically write a re-made segment's tokens and audio; returns the file name."""
    name = f"segment-{index:04d}-seed{seed}.npz"
    write_part(folder / name, semantic, coarse, fine, audio)
    return name


def load_segment(path: Path) -> dict[str, np.ndarray]:
    return read_part(path)


def segment_record(seg: Segment, seed: int, file: str, parts: str, audio_len: int,
                   history: str, seconds: float) -> dict[str, Any]:
    return {
        "index": seg.index, "text": seg.text, "voice": seg.voice, "speaker": seg.speaker,
        "seed": seed, "pause_before_s": seg.pause_before_s, "line_no": seg.line_no,
        "file": file, "parts": parts, "duration_s": audio_len / SAMPLE_RATE, "history": history,
        "seconds": round(seconds, 4),
    }


def stitch(folder: Path, records: list[dict[str, Any]]) -> np.ndarray:
    from bark_engine.audio import join_segments

    audios = [load_segment(folder / r["file"])["audio"] for r in records]
    return join_segments(audios, [float(r["pause_before_s"]) for r in records], SAMPLE_RATE, FADE_S)
