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
# bubblewrap: the grader's sandbox for student code; curl: the installs below
apt-get install -y -qq --no-install-recommends bubblewrap ca-certificates curl

# uv, the same release the course uses; it installs Python 3.13 and the locked packages
curl -LsSf https://astral.sh/uv/0.13.9/install.sh | env UV_INSTALL_DIR=/usr/local/bin sh
cd "$SOURCE"
uv sync --locked --no-dev

# The dataset the grader evaluates on, checked against the course's checksum
curl -fsSL -o "$SOURCE/AER_credit_card_data.csv" "$DATA_URL"
echo "$DATA_SHA256  $SOURCE/AER_credit_card_data.csv" | sha256sum -c -
