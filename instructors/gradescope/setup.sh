#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
# The autograder zip (made by make_autograder.sh) unpacks to /autograder/source and holds the
# grader, the course's pyproject.toml and uv.lock, run_autograder and, optionally, seed.txt.
set -euo pipefail

ROOT=${AUTOGRADER_ROOT:-/autograder}  # the same root as run_autograder's
SOURCE=${GRADER_SOURCE:-$ROOT/source}
DATA_URL=https://raw.githubusercontent.com/alexeygrigorev/datasets/master/AER_credit_card_data.csv
DATA_SHA256=93a46ce44e0542e5094e9675440fcc36e9a018c2ec879e868726f717ebd47c21

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends ca-certificates curl

# uv, the same release the course uses; it installs Python 3.13 (where every user can read it:
# without bubblewrap, student code runs as an unprivileged user) and the locked packages
curl -LsSf https://astral.sh/uv/0.13.9/install.sh | env UV_INSTALL_DIR=/usr/local/bin sh
export UV_PYTHON_INSTALL_DIR=/opt/uv-python
cd "$SOURCE"
uv sync --locked --group grader
chmod -R a+rX "$SOURCE"
[ -f "$SOURCE/seed.txt" ] && chmod 600 "$SOURCE/seed.txt"

# What grading needs (bubblewrap), then what this machine will isolate. Gradescope's containers
# give no user namespaces, where bubblewrap cannot start: unless the zip was made with
# --no-sandbox (make_autograder.sh), the image build stops here, saying why.
uv run --group grader --frozen grade setup --no-podman || true
if ! uv run --group grader --frozen grade doctor; then
  if [ "$(cat "$SOURCE/sandbox.txt" 2>/dev/null)" != "off" ]; then
    echo "setup.sh: the grader's sandbox cannot start here (see above). Rebuild the zip with" >&2
    echo "  bash instructors/gradescope/make_autograder.sh --no-sandbox [SEED]" >&2
    echo "to grade without it: student code then runs as an unprivileged user (the seed file, the" >&2
    echo "results and the grader out of its reach) and every report says so first." >&2
    exit 1
  fi
fi

# The dataset the grader evaluates on, checked against the course's checksum
curl -fsSL -o "$SOURCE/AER_credit_card_data.csv" "$DATA_URL"
echo "$DATA_SHA256  $SOURCE/AER_credit_card_data.csv" | sha256sum -c -
