"""Scripts the grader runs inside the sandbox; they import nothing from the grader."""
