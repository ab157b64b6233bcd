"""kswgd: benchmark suite and reproducibility harness for Koopman spectral particle samplers."""

import os

# OpenBLAS's worker threads spin for about 2^28 cycles after each product by default; the
# threaded Gaussian matrices (kswgd._kernels) that follow a product then share the cores with a
# spinning thread (a DMPS step at the paper's size: 116 ms instead of 92 ms). 4 is OpenBLAS's
# smallest timeout. Read when OpenBLAS loads, i.e. when numpy is first imported, so it only
# takes effect when kswgd is imported first (the ``kswgd`` command); a value already in the
# environment wins. It changes timings only, never a number.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

__version__ = "0.1.0"
