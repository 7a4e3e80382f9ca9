"""Grading a cohort: `grade batch` (main), its children (runner), the gradebook, the cohort
report."""
