"""Numba's settings, in one place: what every kernel is compiled with, and what must be set
before the first kernel is compiled.

Every kernel of the numba backend is declared with :func:`kernel` (``error_model="numpy"``
and the compile cache) and, where a loop needs fused multiply-adds, :data:`FASTMATH`:

* ``error_model="numpy"``: a division by zero gives inf, as in the reference; numba's
  default Python error model puts a zero test before every division, which kept LLVM
  from vectorising Adam's update;
* :data:`FASTMATH` is ``{"contract"}`` only: FMA instructions, but no reassociation, so
  results stay close to the reference's order of operations.

Threading layer: numba's ``workqueue`` layer costs ~150 us per parallel-region
launch on our 2-core machines and ``omp`` ~3 us; a training step launches three
regions, so the layer decides whether parallelism pays at all.  We ask for
``omp`` (then ``tbb``) explicitly and fall back to ``workqueue`` only if neither
can load; :func:`threading_layer` reports which one actually ran.  A user's
own ``NUMBA_THREADING_LAYER`` wins.

Compile cache: kernels are compiled with ``cache=True`` so only the first run
pays the seconds of compilation.  The cache lives in a folder named after a
hash of the kernels' source files (:func:`_sources_hash`), inside
``NUMBA_CACHE_DIR`` if set, else the ``__pycache__`` next to the source; on a
read-only install neither may be writable, and numba then refuses to create a
cached function at import, so the user cache folder and then a temporary
folder are tried.  :data:`CACHE` is False only when no writable place exists,
so such an install compiles on every run instead of failing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

import numba

#: Floating-point licence of the hot loops: fused multiply-add only (see the module).
FASTMATH = {"contract"}

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER_PRIORITY = ["omp", "tbb", "workqueue"]


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
        return True
    except OSError:
        return False


def _choose_cache_dir() -> str | None:
    """The cache folder numba will use, or None when nothing is writable."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        candidates = [Path(os.environ["NUMBA_CACHE_DIR"])]
    else:
        candidates = [Path(__file__).resolve().parent / "__pycache__"]
    try:
        import platformdirs

        candidates.append(Path(platformdirs.user_cache_dir("fastnn")) / "numba")
    except ImportError:
        pass
    candidates.append(Path(tempfile.gettempdir()) / f"fastnn-numba-{os.getuid() if hasattr(os, 'getuid') else 'user'}")
    for folder in candidates:
        kernels = folder / f"fastnn-kernels-{_sources_hash()}"
        if _writable(kernels):
            numba.config.CACHE_DIR = str(kernels)
            return str(kernels)
    return None


def _sources_hash() -> str:
    """A hash of every source file the numba kernels are compiled from.

    numba invalidates a cached function when *its own* file changes, but
    ``_train_steps`` also compiles in the tile kernels and the sgemm binding
    from the sibling modules: an edit there alone would leave stale machine code
    in the cache.  Keying the cache folder on all of them closes that gap.
    """
    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    # The kernels also compile the random-key functions of fastnn/_keys.py.
    for path in sorted(here.glob("*numba*.py")) + [here.parent / "_keys.py"]:
        if not path.exists():
            continue
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


CACHE_DIR = _choose_cache_dir()
CACHE = CACHE_DIR is not None


def threading_layer() -> str:
    """Name of the threading layer in use (starts numba's pool if it is not running yet).

    Starting the pool picks the layer; ``numba.get_num_threads()`` starts it
    without compiling anything (a parallel kernel compiled just to start it
    cost ~0.7 s on every run).
    """
    numba.get_num_threads()
    return numba.threading_layer()


def kernel(**flags):
    """``numba.njit`` with fastnn's settings: the compile cache and ``error_model="numpy"``.

    ``flags`` adds numba's own (``parallel=True``, ``fastmath=FASTMATH``, ``nogil=True``, ...).
    """
    return numba.njit(cache=CACHE, error_model="numpy", **flags)


def cache_index_exists(dispatcher) -> bool:
    """Whether numba's compile cache holds a current build of ``dispatcher`` (a compiled function).

    It reads the function's cache index the way numba does when it looks for a
    compiled version: in the same folder, checking numba's version and the hash of
    the source file.  False when no cache folder is writable.
    """
    if not CACHE:
        return False
    try:
        index = dispatcher._cache._cache_file._load_index()
    except Exception:  # numba's cache internals changed: do not claim a cold start we cannot see
        return True
    return bool(index)


@contextlib.contextmanager
def vectorizing():
    """Compile what is compiled in this block with LLVM's SLP vectorizer on.

    numba leaves it off by default (``NUMBA_SLP_VECTORIZE=0``); the sparse
    kernels' register tiles need it to become vector code (see
    :mod:`fastnn.backends._numba_sparse`).  It is read when a kernel is
    compiled, so turning it on around our own calls leaves other numba code in
    the process as its author configured it; a user's ``NUMBA_SLP_VECTORIZE`` wins.
    """
    if "NUMBA_SLP_VECTORIZE" in os.environ:
        yield
        return
    before = numba.config.SLP_VECTORIZE
    numba.config.SLP_VECTORIZE = 1
    try:
        yield
    finally:
        numba.config.SLP_VECTORIZE = before
