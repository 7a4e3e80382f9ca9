#!/usr/bin/env bash
# Build the zip to upload as the Gradescope autograder:  bash homework/gradescope/make_autograder.sh [SEED]
# It holds setup.sh and run_autograder at its root, the grader and the course's uv project.
# With SEED, it also holds seed.txt: the seed of the hidden checks (keep the zip private).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${OUT:-$PWD/autograder.zip}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

cp "$here/setup.sh" "$here/run_autograder" "$stage/"
cp "$repo/pyproject.toml" "$repo/uv.lock" "$repo/.python-version" "$repo/README.md" "$stage/"
cp -r "$repo/grader" "$stage/grader"
find "$stage/grader" -name '__pycache__' -prune -exec rm -rf {} +
[ $# -ge 1 ] && printf '%s\n' "$1" > "$stage/seed.txt"
chmod +x "$stage/setup.sh" "$stage/run_autograder"
rm -f "$out"
(cd "$stage" && python3 -m zipfile -c "$out" ./* .python-version)
echo "wrote $out"
