"""The contractflow domain: pure, deterministic, free of I/O."""
