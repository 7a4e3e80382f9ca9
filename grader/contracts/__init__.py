"""Stage contracts as pytest tests: one module per stage, each test one graded check."""
