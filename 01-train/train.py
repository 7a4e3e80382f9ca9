"""Train the churn model: DictVectorizer + LogisticRegression, validated with 5-fold CV.

Run:  python train.py            (reads $CHURN_DATA, or downloads the course CSV)
Writes model.bin = (dv, model), loaded again by predict.py.
"""

import hashlib
import os
import pickle
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import KFold, train_test_split

C = 1.0
N_SPLITS = 5
MODEL_FILE = "model.bin"

NUMERICAL = ["tenure", "monthlycharges", "totalcharges"]
CATEGORICAL = [
    "gender", "seniorcitizen", "partner", "dependents", "phoneservice", "multiplelines",
    "internetservice", "onlinesecurity", "onlinebackup", "deviceprotection", "techsupport",
    "streamingtv", "streamingmovies", "contract", "paperlessbilling", "paymentmethod",
]  # fmt: skip


def load_data() -> pd.DataFrame:
    df = pd.read_csv(data_path())
    df.columns = df.columns.str.lower().str.replace(" ", "_")

    # pandas 3 stores text as the "str" dtype, not "object": the course's
    # `df.dtypes == "object"` finds no column at all there. Select text columns
    # in a way that works on pandas 2 and 3.
    text_columns = df.select_dtypes(include=["object", "string"]).columns
    for col in text_columns:
        df[col] = df[col].str.lower().str.replace(" ", "_")

    # 11 customers have a blank TotalCharges (tenure 0): treat as 0.
    df["totalcharges"] = pd.to_numeric(df["totalcharges"], errors="coerce").fillna(0)
    df["churn"] = (df["churn"] == "yes").astype(int)
    return df


def train(df: pd.DataFrame, c: float) -> tuple[DictVectorizer, LogisticRegression]:
    records = df[CATEGORICAL + NUMERICAL].to_dict(orient="records")
    dv = DictVectorizer(sparse=False)
    X = dv.fit_transform(records)
    # newton-cholesky converges in a few iterations on this data; the course's
    # lbfgs(max_iter=1000) stops unconverged in some folds (see README).
    model = LogisticRegression(C=c, solver="newton-cholesky")
    model.fit(X, df["churn"].values)
    return dv, model


def predict(df: pd.DataFrame, dv: DictVectorizer, model: LogisticRegression) -> np.ndarray:
    records = df[CATEGORICAL + NUMERICAL].to_dict(orient="records")
    return model.predict_proba(dv.transform(records))[:, 1]


def main() -> None:
    df = load_data()
    df_full_train, df_test = train_test_split(df, test_size=0.2, random_state=1)

    print(f"validating with {N_SPLITS}-fold cross-validation, C={C}")
    kfold = KFold(n_splits=N_SPLITS, shuffle=True, random_state=1)
    scores = []
    for fold, (train_idx, val_idx) in enumerate(kfold.split(df_full_train)):
        df_train = df_full_train.iloc[train_idx]
        df_val = df_full_train.iloc[val_idx]
        dv, model = train(df_train, C)
        auc = roc_auc_score(df_val["churn"], predict(df_val, dv, model))
        scores.append(auc)
        print(f"fold {fold}: auc={auc:.3f}")
    print(f"C={C}: auc = {np.mean(scores):.3f} ± {np.std(scores):.3f}")

    dv, model = train(df_full_train, C)
    auc = roc_auc_score(df_test["churn"], predict(df_test, dv, model))
    print(f"test auc = {auc:.4f}")

    with open(MODEL_FILE, "wb") as f_out:
        pickle.dump((dv, model), f_out)
    print(f"the model is saved to {MODEL_FILE}")


# --- Where the data comes from: $CHURN_DATA, else the course URL (downloaded once) ---

DATA_URL = (
    "https://raw.githubusercontent.com/alexeygrigorev/mlbookcamp-code/master/"
    "chapter-03-churn-prediction/WA_Fn-UseC_-Telco-Customer-Churn.csv"
)
DATA_SHA256 = "88be4b93fbe0cc83421af1c503794c97c342eca914c1576db7c276e61d61358a"
CACHE = Path.home() / ".cache" / "deploy-course" / "WA_Fn-UseC_-Telco-Customer-Churn.csv"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def data_path() -> Path:
    """The CSV from $CHURN_DATA, else the course URL (downloaded once, then cached)."""
    if os.environ.get("CHURN_DATA"):
        path = Path(os.environ["CHURN_DATA"])
        if not path.is_file():
            sys.exit(f"CHURN_DATA={path} does not exist: point CHURN_DATA at the churn CSV.")
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
            "Offline? Download the CSV by hand and set CHURN_DATA=/path/to/the.csv"
        )
    if sha256(tmp) != DATA_SHA256:
        tmp.unlink()
        sys.exit(
            "the downloaded dataset does not have the expected sha256 checksum.\n"
            "Set CHURN_DATA=/path/to/WA_Fn-UseC_-Telco-Customer-Churn.csv to use a known copy."
        )
    tmp.replace(CACHE)
    return CACHE


if __name__ == "__main__":
    main()
