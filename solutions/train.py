"""Train the credit-card approval model and save it twice.

Run:  uv run python train.py     (reads $CREDIT_DATA, or downloads the course CSV)
Writes model.bin    = (dv, model)   the DictVectorizer and the LogisticRegression
       pipeline.bin = Pipeline      the same two steps as one object
"""

import hashlib
import os
import pickle
import sys
import urllib.request
from pathlib import Path

import pandas as pd
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline

DATA_URL = (
    "https://raw.githubusercontent.com/alexeygrigorev/datasets/master/AER_credit_card_data.csv"
)
DATA_SHA256 = "93a46ce44e0542e5094e9675440fcc36e9a018c2ec879e868726f717ebd47c21"
CACHE = Path.home() / ".cache" / "deploy-course" / "AER_credit_card_data.csv"

C = 1.0
NUMERICAL = ["reports", "age", "income", "dependents", "months", "majorcards", "active"]
CATEGORICAL = ["owner", "selfemp"]
# `share` and `expenditure` are not features: they describe what the client spent
# *with the card*, so they are only known once the card was granted. A model that
# uses them scores an AUC near 1.0 on this data and is useless for a new applicant.
LEAKY = ["share", "expenditure"]


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
        sys.exit(
            "the downloaded dataset does not have the expected sha256 checksum.\n"
            "Set CREDIT_DATA=/path/to/AER_credit_card_data.csv to use a known copy."
        )
    tmp.replace(CACHE)
    return CACHE


def load_data() -> pd.DataFrame:
    df = pd.read_csv(data_path())
    df = df.drop(columns=LEAKY)
    df["card"] = (df["card"] == "yes").astype(int)
    return df


def records(df: pd.DataFrame) -> list[dict]:
    return df[CATEGORICAL + NUMERICAL].to_dict(orient="records")


def main() -> None:
    df = load_data()
    df_train, df_test = train_test_split(df, test_size=0.2, random_state=1)

    # DictVectorizer turns each client (a dict) into a row of numbers: numerical
    # fields as they are, owner/selfemp one-hot encoded ("owner=yes", "owner=no").
    # newton-cholesky converges here; the default lbfgs stops unconverged on
    # these unscaled columns and prints a ConvergenceWarning.
    pipeline: Pipeline = make_pipeline(
        DictVectorizer(sparse=False),
        LogisticRegression(C=C, solver="newton-cholesky"),
    )
    pipeline.fit(records(df_train), df_train["card"].values)

    y_pred = pipeline.predict_proba(records(df_test))[:, 1]
    print(f"test auc = {roc_auc_score(df_test['card'].values, y_pred):.4f}")

    # Stage 1 saves the two fitted steps as a pair; stage 2 saves the Pipeline.
    # They are the same fitted objects, so both files give the same probabilities.
    dv, model = pipeline[0], pipeline[1]
    with open("model.bin", "wb") as f_out:
        pickle.dump((dv, model), f_out)
    with open("pipeline.bin", "wb") as f_out:
        pickle.dump(pipeline, f_out)
    print("saved model.bin and pipeline.bin")


if __name__ == "__main__":
    main()
