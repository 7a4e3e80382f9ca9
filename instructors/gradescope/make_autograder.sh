#!/usr/bin/env bash
# Build the zip to upload as the Gradescope autograder:
#   bash instructors/gradescope/make_autograder.sh [--no-sandbox] [SEED]
# It holds setup.sh and run_autograder at its root, the grader and the course's uv project.
# With SEED, it also holds seed.txt: the seed of the hidden checks (keep the zip private).
# --no-sandbox: grade where bubblewrap cannot start (Gradescope's containers give no user
# namespaces): student code runs as an unprivileged user, and every report says so first.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$PWD/autograder.zip}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

bash "$here/../bundle_grader.sh" "$stage" >/dev/null
cp "$here/setup.sh" "$here/run_autograder" "$stage/"
if [ "${1:-}" = --no-sandbox ]; then
  echo off > "$stage/sandbox.txt"
  shift
fi
if [ $# -ge 1 ]; then  # readable by its owner only (the grader refuses it otherwise)
  (umask 077 && printf '%s\n' "$1" > "$stage/seed.txt")
fi
chmod +x "$stage/setup.sh" "$stage/run_autograder"
rm -f "$out"
(cd "$stage" && python3 -m zipfile -c "$out" ./* .python-version)
echo "wrote $out"
