"""Stages 1 and 2: train the credit-card approval model and save it.

Run:  uv run python train.py     (reads $CREDIT_DATA, or downloads the course CSV)
Must write model.bin    = (dv, model)   (stage 1)
           pipeline.bin = Pipeline      (stage 2)
"""

import hashlib
import os
import sys
import urllib.request
from pathlib import Path

import pandas as pd

DATA_URL = (
    "https://raw.githubusercontent.com/alexeygrigorev/datasets/master/AER_credit_card_data.csv"
)
DATA_SHA256 = "93a46ce44e0542e5094e9675440fcc36e9a018c2ec879e868726f717ebd47c21"
CACHE = Path.home() / ".cache" / "deploy-course" / "AER_credit_card_data.csv"

NUMERICAL = ["reports", "age", "income", "dependents", "months", "majorcards", "active"]
CATEGORICAL = ["owner", "selfemp"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def data_path() -> Path:
    """The CSV from $CREDIT_DATA, else the course URL (downloaded once, then cached)."""
    if os.environ.get("CREDIT_DATA"):
        path = Path(os.environ["CREDIT_DATA"])
        if not path.is_file():
            sys.exit(f"CREDIT_DATA={path} does not exist: point it at the credit-card CSV.")
        return path
    if CACHE.is_file() and sha256(CACHE) == DATA_SHA256:
        return CACHE
    print(f"downloading {DATA_URL}", file=sys.stderr)
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    tmp = CACHE.with_suffix(".part")
    try:
        urllib.request.urlretrieve(DATA_URL, tmp)
    except OSError as e:
        sys.exit(
            f"could not download the dataset ({e}).\n"
            "Offline? Download the CSV by hand and set CREDIT_DATA=/path/to/the.csv"
        )
    if sha256(tmp) != DATA_SHA256:
        tmp.unlink()
        sys.exit("the downloaded dataset does not have the expected sha256 checksum.")
    tmp.replace(CACHE)
    return CACHE


def main() -> None:
    df = pd.read_csv(data_path())
    print(f"{len(df)} applications, columns: {', '.join(df.columns)}")

    # TODO (stage 1): drop the two columns that leak the target (see the README),
    #      turn `card` into 0/1, split with train_test_split(test_size=0.2, random_state=1).
    # TODO (stage 1): fit a DictVectorizer + LogisticRegression on the training part,
    #      print the AUC on the test part, pickle (dv, model) to model.bin
    #      (the fitted Pipeline of stage 2 is accepted there too).
    # TODO (stage 2): the same two steps as one Pipeline, pickled to pipeline.bin.
    print("TODO: nothing trained yet")


if __name__ == "__main__":
    main()
