"""Reading npz files without running code from them.

VideoPose3D's and P-STMO's npz files store nested dicts (subject -> action -> arrays) as pickled 0-d object
arrays, and ``np.load(allow_pickle=True)`` would run whatever a crafted file's pickle asks for. Here plain
arrays are read with ``allow_pickle=False``; object arrays are unpickled by :class:`RestrictedUnpickler`, which
rebuilds only dicts, lists, tuples, strings, numbers and numpy arrays and refuses every other global.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from tmt.errors import DataError

SAFE_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),  # how Python 3 pickles bytes at protocol < 3 (np.save writes protocol 3)
        ("collections", "OrderedDict"),
    }
)
"""The only globals a pickle in a data file may name: array and scalar reconstruction, nothing callable else."""


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle named a global outside :data:`SAFE_GLOBALS`."""


class RestrictedUnpickler(pickle.Unpickler):
    """Rebuilds plain containers, numbers, strings and numpy arrays; any other global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in SAFE_GLOBALS:
            return super().find_class(module, name)
        if _is_dtype_class(module, name):
            return super().find_class(module, name)
        raise UnsafePickleError(f"refused to load {module}.{name}")


def _is_dtype_class(module: str, name: str) -> bool:
    """numpy >= 1.25 pickles dtypes through their classes (numpy.dtypes.Float64DType and so on)."""
    return module == "numpy.dtypes" and name.endswith("DType")


def _read_member(raw: bytes) -> np.ndarray:
    """One .npy member: through numpy without pickle, or (object arrays) through the restricted unpickler."""
    fp = io.BytesIO(raw)
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
    if not dtype.hasobject:
        return np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
    value = RestrictedUnpickler(fp, encoding="latin1").load()
    if not isinstance(value, np.ndarray):
        raise DataError(f"object array member holds {type(value).__name__}, not an array")
    return value.reshape(shape, order="F" if fortran else "C")


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of an npz file, by key; a file that is not a safe npz raises one :class:`DataError`."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            out = {}
            for member in archive.namelist():
                key = member.removesuffix(".npy")
                out[key] = _read_member(archive.read(member))
            return out
    except UnsafePickleError as err:
        raise DataError(
            f"{path}: holds a pickled object that is not a dict, list, tuple, string, number or numpy array "
            f"({err}); it was not loaded"
        ) from None
    except DataError as err:
        raise DataError(f"{path}: {err}") from None
    except Exception as exc:  # zipfile, numpy and pickle raise many types for a broken archive
        raise DataError(f"{path}: not a readable npz file ({type(exc).__name__}: {exc})") from None
