"""Handing back the resident pages of memory-mapped weights once they have been copied.

`checkpoints.load_checkpoint` maps each checkpoint, so a float32 CPU model's
parameters are views of the file and cost nothing until read. When
`model.use_decode_layout` copies a Linear weight into its column-major layout,
the copy reads every page of the original, and those pages stay mapped and
counted in the process's RSS for as long as the mapping lives (it lives as
long as any parameter still views the file, i.e. as long as the model). Left
alone, the process would hold each decode weight twice.

`MappedPages.release(tensor)` drops them: `madvise(MADV_DONTNEED)` on the
page-aligned interior of the tensor's bytes. That is lossless only for clean
file-backed pages: they are exactly the pages the kernel may evict by itself
under memory pressure, and a later read of the old tensor (if anyone still
holds it) faults them back in from the file, with the same bytes. On anonymous
memory, or on a private mapping with copy-on-write pages, the same call would
discard data; so we act only where `/proc/self/smaps` shows the bytes inside a
file mapping that holds no anonymous (written) page, and do nothing elsewhere
(other systems, GPU tensors, legacy checkpoints read into ordinary memory).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import mmap
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

MADV_DONTNEED = 4  # the same value on every Linux architecture
SMAPS = Path("/proc/self/smaps")


@dataclass(frozen=True)
class FileMapping:
    """One file-backed region of this process's address space, from `/proc/self/smaps`."""

    start: int
    end: int
    path: str
    anonymous_kb: int  # pages copied-on-write: private data the file does not hold

    @property
    def clean(self) -> bool:
        """True when every resident page can be dropped and re-read from the file."""
        return self.anonymous_kb == 0


def file_mappings(smaps: Path = SMAPS) -> list[FileMapping]:
    """The file-backed mappings of this process (empty where `/proc` is missing)."""
    try:
        text = smaps.read_text()
    except OSError:
        return []
    found: list[FileMapping] = []
    header: tuple[int, int, str] | None = None
    for line in text.splitlines():
        first, _, rest = line.partition(" ")
        if first.endswith(":"):  # "Key:   value kB" of the current mapping
            if header is not None and first == "Anonymous:":
                start, end, path = header
                found.append(FileMapping(start, end, path, int(rest.split()[0])))
                header = None
            continue
        # "start-end perms offset dev inode [path]": a new mapping
        fields = line.split(maxsplit=5)
        header = None
        if len(fields) == 6 and fields[4] != "0" and fields[5].startswith("/"):
            lo, hi = fields[0].split("-")
            header = (int(lo, 16), int(hi, 16), fields[5])
    return found


@functools.cache
def _madvise():
    """libc's `madvise`, or None off Linux or where it cannot be found."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.madvise
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


class MappedPages:
    """Releases the resident pages of CPU tensors that are views of a clean file mapping.

    The mappings are read once, on the first `release`, so a loop over many
    weights costs one read of `/proc/self/smaps`. Nothing here writes memory,
    so that snapshot stays true while the loop runs.
    """

    def __init__(self) -> None:
        self._mappings: list[FileMapping] | None = None
        self.released = 0  # bytes handed back so far

    def _mapping_of(self, start: int, end: int) -> FileMapping | None:
        if self._mappings is None:
            self._mappings = file_mappings() if _madvise() is not None else []
        for m in self._mappings:
            if m.start <= start and end <= m.end:
                return m
        return None

    def release(self, tensor: torch.Tensor) -> int:
        """Drop the resident pages wholly inside `tensor`'s bytes; returns how many bytes.

        Pages shared with neighbouring tensors (at most one at each end) stay.
        Call it only once nothing needs `tensor`'s pages soon: its values stay
        readable, but a read costs page faults from the file.
        """
        if tensor.device.type != "cpu" or not tensor.is_contiguous() or tensor.numel() == 0:
            return 0
        start = tensor.data_ptr()
        end = start + tensor.numel() * tensor.element_size()
        page = mmap.PAGESIZE
        lo = -(-start // page) * page  # first whole page inside the tensor
        hi = end // page * page
        if hi <= lo:
            return 0
        mapping = self._mapping_of(start, end)
        madvise = _madvise()
        if mapping is None or not mapping.clean or madvise is None:
            return 0
        if madvise(ctypes.c_void_p(lo), ctypes.c_size_t(hi - lo), MADV_DONTNEED) != 0:
            return 0
        self.released += hi - lo
        return hi - lo
