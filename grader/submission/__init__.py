"""The submitted files the grader reads itself: bounded readers, and what it reads in them
(the Dockerfile, fly.toml, uv.lock, a pickle's scikit-learn version). Nothing here runs
student code or imports the check framework."""
