#!/usr/bin/env bash
# Copy the grader, and only the grader, to DEST:  bash instructors/bundle_grader.sh DEST
# DEST gets the course's uv project (pyproject.toml, uv.lock, .python-version) and grader/:
# what `uv sync --locked --group grader` and `uv run --group grader grade` need, without the lessons or solutions/.
# The Gradescope zip is made from it; for GitHub Classroom, push DEST as the public grader
# repository that the students' workflow checks out.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DEST" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
dest=$1
mkdir -p "$dest"
cp "$repo/pyproject.toml" "$repo/uv.lock" "$repo/.python-version" "$dest/"
rm -rf "$dest/grader"
cp -r "$repo/grader" "$dest/grader"
find "$dest/grader" -name '__pycache__' -prune -exec rm -rf {} +
cat > "$dest/README.md" <<'MD'
# The course's autograder

`uv sync --locked --group grader`, then `uv run --group grader grade SUBMISSION --spec credit` (with `CREDIT_DATA`
set to the dataset). `uv run --group grader grade --help` lists the options.
MD
echo "grader copied to $dest"
