"""kswgd: benchmark suite and reproducibility harness for Koopman spectral particle samplers."""

__version__ = "0.1.0"
