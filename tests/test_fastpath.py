"""The optional fast path (bench/fastpath) scores exactly as the lesson's pipeline.predict_proba."""

from __future__ import annotations

import importlib
import importlib.util
import json
import pickle
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from support import ROOT, dataset

from bench.fastpath.export import export
from bench.fastpath.model import WeightsModel, sigmoid


def load_module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trained() -> Iterator[tuple[ModuleType, object, list[dict[str, object]]]]:
    """05-uv's train.py, the pipeline it fits on the training split, and every row of the data."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHURN_DATA", str(dataset("CHURN_DATA")))
        train = load_module("churn_train", ROOT / "05-uv" / "train.py")
        df = train.load_data()
        df_full_train, _ = train.train_test_split(df, test_size=0.2, random_state=1)
        pipeline = train.train(df_full_train, train.C)
        records = df[train.CATEGORICAL + train.NUMERICAL].to_dict(orient="records")
        yield train, pipeline, records


def test_equals_predict_proba_on_every_row(trained, tmp_path: Path) -> None:
    _, pipeline, records = trained
    weights = tmp_path / "weights.json"
    weights.write_text(json.dumps(export(pipeline)))  # as export.py writes it
    model = WeightsModel.load(weights)

    expected = pipeline.predict_proba(records)[:, 1]
    got = [model.predict_one(r) for r in records]

    assert len(records) == 7043
    worst = max(abs(g - e) for g, e in zip(got, expected, strict=True))
    assert worst <= 1e-9, f"largest difference {worst:g}"


def test_unseen_category_counts_as_zero_as_in_dictvectorizer(trained) -> None:
    _, pipeline, records = trained
    model = WeightsModel(**export(pipeline))  # type: ignore[arg-type]
    record = {**records[0], "contract": "ten_years"}
    assert model.predict_one(record) == pytest.approx(
        pipeline.predict_proba([record])[0, 1], abs=1e-9
    )


def test_sigmoid_does_not_overflow() -> None:
    assert sigmoid(-1000.0) == 0.0
    assert sigmoid(1000.0) == 1.0
    assert sigmoid(0.0) == 0.5


def test_request_models_are_the_lessons(trained, tmp_path: Path, monkeypatch) -> None:
    """The fast path copies the lesson's Customer and PredictResponse: they must not drift apart."""
    _, pipeline, _ = trained
    (tmp_path / "pipeline.bin").write_bytes(pickle.dumps(pipeline))
    (tmp_path / "weights.json").write_text(json.dumps(export(pipeline)))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FASTPATH_WEIGHTS", str(tmp_path / "weights.json"))
    lesson = load_module("churn_predict", ROOT / "05-uv" / "predict.py")
    sys.modules.pop("bench.fastpath.app", None)
    fast = importlib.import_module("bench.fastpath.app")

    for name in ("Customer", "PredictResponse"):
        schema = getattr(lesson, name).model_json_schema()
        assert getattr(fast, name).model_json_schema() == schema, name
