"""Similarity: a copy of another student's work with renamed variables and reordered functions
is found, with its matching lines side by side; independent correct solutions, and students who
handed in the starter code or lesson code, are not flagged."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

from grader.batch.course import similarity
from tests.support import ROOT

RENAMES = {
    "df": "frame",
    "pipeline": "clf",
    "records": "as_dicts",
    "data_path": "find_csv",
    "load_data": "read_table",
    "df_train": "part_fit",
    "df_test": "part_eval",
    "y_pred": "scores",
    "f_out": "handle",
    "tmp": "partial",
    "path": "location",
    "card_probability": "p",
    "client": "applicant",
    "load_model": "restore",
}

INDEPENDENT_TRAIN = """\
import pickle
import os

import pandas
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.metrics import roc_auc_score

table = pandas.read_csv(os.environ["CREDIT_DATA"])
table = table.drop(["share", "expenditure"], axis=1)
target = table.pop("card").map({"yes": 1, "no": 0})
x_tr, x_te, y_tr, y_te = train_test_split(table, target, test_size=0.2, random_state=1)

vec = DictVectorizer(sparse=False)
clf = LogisticRegression(solver="newton-cholesky", C=1.0)
clf.fit(vec.fit_transform(x_tr.to_dict("records")), y_tr)
print("auc", roc_auc_score(y_te, clf.predict_proba(vec.transform(x_te.to_dict("records")))[:, 1]))

with open("model.bin", "wb") as out:
    pickle.dump((vec, clf), out)
from sklearn.pipeline import Pipeline
with open("pipeline.bin", "wb") as out:
    pickle.dump(Pipeline([("dv", vec), ("lr", clf)]), out)
"""

OTHER_TRAIN = '''\
"""My homework: train and save."""
import csv, os, pickle
from sklearn.pipeline import make_pipeline
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

FEATURES_NUM = ["reports", "age", "income", "dependents", "months", "majorcards", "active"]


def read_rows(filename):
    rows, labels = [], []
    with open(filename) as fh:
        for line in csv.DictReader(fh):
            labels.append(1 if line["card"] == "yes" else 0)
            row = {k: float(line[k]) for k in FEATURES_NUM}
            row["owner"], row["selfemp"] = line["owner"], line["selfemp"]
            rows.append(row)
    return rows, labels


if __name__ == "__main__":
    X, y = read_rows(os.getenv("CREDIT_DATA", "AER_credit_card_data.csv"))
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=1)
    model = make_pipeline(DictVectorizer(), LogisticRegression(max_iter=5000))
    model.fit(X_train, y_train)
    print(model.score(X_test, y_test))
    pickle.dump((model[0], model[1]), open("model.bin", "wb"))
    pickle.dump(model, open("pipeline.bin", "wb"))
'''

OTHER_PREDICT = """\
import pickle
from fastapi import FastAPI
from pydantic import BaseModel

with open("pipeline.bin", "rb") as fh:
    model = pickle.load(fh)

api = FastAPI()
app = api


class Applicant(BaseModel):
    reports: int
    age: float
    income: float
    owner: str
    selfemp: str
    dependents: int
    months: int
    majorcards: int
    active: int


@api.get("/ping")
def alive():
    return "pong"


@api.post("/predict")
def score(a: Applicant):
    prob = model.predict_proba([a.model_dump()])[0][1]
    return {"card_probability": float(prob), "card": bool(prob >= 0.5)}
"""


def renamed_and_reordered(source: str) -> str:
    """Another student's file with every listed name changed and the functions in reverse."""
    for old, new in RENAMES.items():
        source = re.sub(rf"\b{old}\b", new, source)
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    if len(funcs) < 2:
        return source
    start, end = funcs[0].lineno - 1, funcs[-1].end_lineno or 0
    chunks = ["".join(lines[f.lineno - 1 : f.end_lineno]) + "\n\n" for f in reversed(funcs)]
    return "".join(lines[:start]) + "".join(chunks) + "".join(lines[end:])


def cohort(root: Path) -> dict[str, Path]:
    ignore = shutil.ignore_patterns("*.bin", ".venv", "__pycache__")
    folders = {name: root / name for name in ("ana", "ben", "cy", "dee", "eve", "fay")}
    shutil.copytree(ROOT / "solutions", folders["ana"], ignore=ignore)  # the original
    folders["ben"].mkdir()
    for name in ("train.py", "predict.py"):  # ben's copy of ana's work
        text = (ROOT / "solutions" / name).read_text()
        (folders["ben"] / name).write_text(renamed_and_reordered(text))
    folders["cy"].mkdir()
    (folders["cy"] / "train.py").write_text(INDEPENDENT_TRAIN)
    (folders["cy"] / "predict.py").write_text(OTHER_PREDICT.replace("alive", "ping"))
    folders["dee"].mkdir()
    (folders["dee"] / "train.py").write_text(OTHER_TRAIN)
    (folders["dee"] / "predict.py").write_text((ROOT / "04-pydantic" / "predict.py").read_text())
    shutil.copytree(ROOT / "homework", folders["eve"], ignore=ignore)  # the starter code
    shutil.copytree(ROOT / "homework", folders["fay"], ignore=ignore)
    return folders


def test_a_renamed_reordered_copy_is_found_and_independent_work_is_not(tmp_path: Path) -> None:
    folders = cohort(tmp_path)
    copied = renamed_and_reordered((ROOT / "solutions" / "train.py").read_text())
    assert "def read_table" in copied and copied.index("def main") < copied.index("def sha256")
    matches, files = similarity.find(folders, similarity.boilerplate_roots())
    pairs = {(m.a.owner, m.b.owner, m.a.name) for m in matches}
    assert ("ana", "ben", "train.py") in pairs, pairs
    assert all({a, b} == {"ana", "ben"} for a, b, _ in pairs), f"false positives: {pairs}"
    best = matches[0]
    assert min(best.share_a, best.share_b) > 0.7
    assert files == 12
    text = "\n".join(
        similarity.section(matches, files, len(folders), similarity.boilerplate_roots())
    )
    assert "ana/train.py ↔ ben/train.py" in text or "ana/predict.py ↔ ben/predict.py" in text
    assert "<td><pre>" in text and "def load_data" in text


def test_scores_do_not_change_between_runs_and_student_text_is_escaped(tmp_path: Path) -> None:
    folders = cohort(tmp_path)
    evil = folders["ben"] / "predict.py"
    evil.write_text(evil.read_text() + "\n# </pre></td></table><script>alert(1)</script>\n")
    one = [(m.a.owner, m.b.owner, m.share_a) for m in similarity.find(folders, [])[0]]
    two = [(m.a.owner, m.b.owner, m.share_a) for m in similarity.find(folders, [])[0]]
    assert one == two and one
    matches, files = similarity.find(folders, [])
    text = "\n".join(similarity.section(matches, files, 6, []))
    assert "<script>" not in text


def test_links_and_huge_files_are_not_read(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "train.py").write_text("x = 1\n")
    (tmp_path / "secret.py").symlink_to("/etc/passwd")
    (tmp_path / "big.py").write_text("#" * (similarity.MAX_BYTES + 1))
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "lib.py").write_text("y = 2\n")
    assert list(similarity.read_sources(tmp_path)) == ["train.py"]
