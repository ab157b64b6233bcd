"""asv benchmarks (asv.conf.json lives in this folder; run asv from here)."""
