"""Test session settings: Numba's OpenMP threads must not spin-wait on this shared 2-core
machine (docs/performance.md: a small parallel call goes from 0.2 ms to 16 ms under load)."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "passive")
