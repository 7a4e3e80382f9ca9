"""The credit-card approval model as a web service.

Run:  uv run uvicorn predict:app --host 0.0.0.0 --port 9696     (after train.py)
Try:  open http://localhost:9696/docs, or
      curl -X POST localhost:9696/predict -H 'Content-Type: application/json' \\
           -d '{"reports": 0, "age": 45.5, "income": 3.2, "owner": "yes", "selfemp": "no",
                "dependents": 5, "months": 168, "majorcards": 0, "active": 9}'
"""

import pickle
import sys
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sklearn.pipeline import Pipeline

MODEL_FILE = "pipeline.bin"
THRESHOLD = 0.5


class Client(BaseModel):
    """One credit-card application: the nine features the model was trained on."""

    # extra="forbid": a misspelt field ("income_", or the dropped "share") is an
    # error (422), not something silently ignored while the model scores without it.
    # allow_inf_nan=False: NaN and Infinity are valid JSON numbers for Python, not incomes.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    reports: int = Field(ge=0, le=100, description="major derogatory reports")
    age: float = Field(gt=0, le=120, description="age in years (with twelfths of a year)")
    income: float = Field(ge=0, le=1000, description="yearly income, in USD 10,000")
    owner: Literal["yes", "no"] = Field(description="owns their home")
    selfemp: Literal["yes", "no"] = Field(description="self-employed")
    dependents: int = Field(ge=0, le=50, description="number of dependents")
    months: int = Field(ge=0, le=1200, description="months living at the current address")
    majorcards: int = Field(ge=0, le=100, description="number of major credit cards held")
    active: int = Field(ge=0, le=1000, description="number of active credit accounts")


class Decision(BaseModel):
    card_probability: float = Field(ge=0, le=1)
    card: bool


def load_model(path: str) -> Pipeline:
    """Load the pipeline once, at start-up; exit with a clear message if it cannot be read."""
    try:
        with open(path, "rb") as f_in:
            return pickle.load(f_in)
    except FileNotFoundError:
        sys.exit(f"{path} not found: run `uv run python train.py` first, in this folder.")
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError) as e:
        sys.exit(f"{path} is not a readable model ({e!r}): run `uv run python train.py` again.")


pipeline = load_model(MODEL_FILE)

app = FastAPI(title="credit-card approval")


@app.exception_handler(RequestValidationError)
def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    # The same 422 as FastAPI's own, without echoing the input back: a bare NaN or
    # Infinity in the JSON cannot be written back as JSON, and the 422 would become a 500
    # (lesson 08-hardening, section 3).
    errors = [{"type": e["type"], "loc": e["loc"], "msg": e["msg"]} for e in exc.errors()]
    return JSONResponse(status_code=422, content={"detail": errors})


@app.get("/ping")
def ping() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/predict")
def predict(client: Client) -> Decision:
    # model_dump() gives the plain dict that the DictVectorizer was fitted on.
    card_probability = float(pipeline.predict_proba([client.model_dump()])[0, 1])
    return Decision(card_probability=card_probability, card=card_probability >= THRESHOLD)


if __name__ == "__main__":
    import uvicorn

    # 0.0.0.0: answer connections from outside the container too, not just from itself.
    uvicorn.run(app, host="0.0.0.0", port=9696)
