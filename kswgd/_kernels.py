"""Every Numba kernel of the project lives here (one home; everything else calls these).

Conventions: inputs are C-contiguous float64 arrays validated by the Python wrapper that calls
the kernel; kernels trust their inputs. Each kernel has ``cache=True``; ``parallel=True`` with
``prange`` over particles where the per-particle work is large enough. No BLAS inside a prange
body. Each kernel's docstring gives the formula and the shapes; each has a plain-numpy twin in
the tests.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange
