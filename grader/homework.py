"""The homework's questions and the clients they name (homework/README.md, answers.toml).

Shared by the answers contract (grader/contracts/test_answers.py) and the repository's tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from grader.specs import CREDIT, Record

# The clients the README asks about. A is the spec's example (CREDIT.example); B and C are
# held-out rows of the data (the test part of train_test_split(test_size=0.2, random_state=1)),
# so the model probe and the HTTP probe already score them: no extra run of the student's code.
CLIENT_A: Record = CREDIT.example
CLIENT_B: Record = {
    "reports": 1,
    "age": 40.83333,
    "income": 2.5,
    "owner": "yes",
    "selfemp": "no",
    "dependents": 1,
    "months": 96,
    "majorcards": 1,
    "active": 8,
}
CLIENT_C: Record = {
    "reports": 0,
    "age": 26.16667,
    "income": 2.5,
    "owner": "no",
    "selfemp": "yes",
    "dependents": 0,
    "months": 18,
    "majorcards": 0,
    "active": 0,
}


@dataclass(frozen=True)
class Question:
    section: str
    key: str
    check_id: str
    text: str


# Every question the README asks, in order: tests keep README, template and checks in step.
QUESTIONS = (
    Question("train", "auc", "1.50", "test AUC of model.bin"),
    Question("train", "leaky_auc", "1.51", "test AUC with share and expenditure kept"),
    Question("train", "probability_a", "1.52", "probability of client A (model.bin)"),
    Question("pipeline", "probability_b", "2.50", "probability of client B (pipeline.bin)"),
    Question("fastapi", "card_probability_c", "3.50", "card_probability for client C"),
    Question("fastapi", "card_c", "3.51", "card for client C"),
    Question("pydantic", "status_bad_owner", "4.50", "status code for an unknown owner"),
    Question("uv", "sklearn_version", "5.50", "scikit-learn version in uv.lock"),
    Question("uv", "sklearn_wheel_sha256", "5.51", "sha256 of the scikit-learn wheel"),
    Question("docker", "image_size_mb", "6.50", "image size in MB"),
    Question("flyio", "url", "7.50", "URL of the deployment"),
)
