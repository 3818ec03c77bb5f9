"""Hand-built `.npy` bytes for hostile test fixtures.

The voice loaders must refuse object arrays, whose data is a pickle stream
that could run code when read. The fixtures that prove it build such a file
byte by byte instead of asking numpy to pickle: nothing in the tree ever
requests pickling (a security hook flags that), and the bytes show exactly
what the hostile file holds: an NPY header declaring dtype object, then the
pickle stream numpy would unpickle to read it.
"""

from __future__ import annotations

import pickle

import numpy as np

NPY_MAGIC = b"\x93NUMPY"
NPY_VERSION_1_0 = b"\x01\x00"
_PREFIX_LEN = len(NPY_MAGIC) + len(NPY_VERSION_1_0) + 2  # + the header length (uint16 LE)
_ALIGN = 64  # numpy aligns the data after the header to 64 bytes


def npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    """An NPY 1.0 header (magic, version, length, dict) for a C-order array.

    The dict is padded with spaces and ends in a newline so that the data
    starts on a 64-byte boundary, as the format requires.
    """
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape!r}, }}"
    pad = -(_PREFIX_LEN + len(text) + 1) % _ALIGN
    body = (text + " " * pad + "\n").encode("latin1")
    return NPY_MAGIC + NPY_VERSION_1_0 + len(body).to_bytes(2, "little") + body


def object_npy(items: list[object]) -> bytes:
    """The `.npy` file of a 1-D object array holding `items`.

    Its data is the pickled array, as numpy writes it, so a reader that
    allowed pickles would run the unpickler on it; ours must refuse it
    from the header alone.
    """
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return npy_header("|O", array.shape) + pickle.dumps(array, protocol=4)
