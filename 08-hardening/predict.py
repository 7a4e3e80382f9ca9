"""The churn model as a web service, hardened against what strangers send it.

Run:  uvicorn predict:app --host 0.0.0.0 --port 9696     (after python train.py)
Try:  python client.py, or open http://localhost:9696/docs
"""

import pickle
import sys
from typing import Annotated, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

MODEL_FILE = "pipeline.bin"

YesNo = Literal["yes", "no"]
YesNoService = Literal["yes", "no", "no_internet_service"]

# Customer 7590-VHVEG: the example request shown by http://localhost:9696/docs
EXAMPLE = {
    "gender": "female", "seniorcitizen": 0, "partner": "yes", "dependents": "no",
    "phoneservice": "no", "multiplelines": "no_phone_service", "internetservice": "dsl",
    "onlinesecurity": "no", "onlinebackup": "yes", "deviceprotection": "no", "techsupport": "no",
    "streamingtv": "no", "streamingmovies": "no", "contract": "month-to-month",
    "paperlessbilling": "yes", "paymentmethod": "electronic_check",
    "tenure": 1, "monthlycharges": 29.85, "totalcharges": 29.85,
}  # fmt: skip


class Customer(BaseModel):
    """One customer, as the model saw them in training (lower case, "_" for spaces)."""

    # extra="forbid": a misspelled or unknown field is an error, not silently ignored.
    # strict=True: "12" is not 12 and true is not 1; the client must send real numbers.
    # allow_inf_nan=False: Infinity/NaN are not numbers a customer can have.
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        json_schema_extra={"examples": [EXAMPLE]},
    )

    gender: Literal["female", "male"]
    # Not Literal[0, 1]: Python's true == 1 == 1.0, and the literal lets all three through.
    seniorcitizen: int = Field(ge=0, le=1, description="1 for a senior citizen, else 0")
    partner: YesNo
    dependents: YesNo
    phoneservice: YesNo
    multiplelines: Literal["yes", "no", "no_phone_service"]
    internetservice: Literal["dsl", "fiber_optic", "no"]
    onlinesecurity: YesNoService
    onlinebackup: YesNoService
    deviceprotection: YesNoService
    techsupport: YesNoService
    streamingtv: YesNoService
    streamingmovies: YesNoService
    contract: Literal["month-to-month", "one_year", "two_year"]
    paperlessbilling: YesNo
    paymentmethod: Literal[
        "electronic_check", "mailed_check", "bank_transfer_(automatic)", "credit_card_(automatic)"
    ]
    # Upper bounds: 100 years of tenure, charges no customer can have.
    tenure: int = Field(ge=0, le=1200, description="months with the company")
    monthlycharges: float = Field(ge=0, le=10_000)
    totalcharges: float = Field(ge=0, le=10_000_000)


class PredictResponse(BaseModel):
    churn_probability: float
    churn: bool


def load_model(path: str):
    """Load the pipeline once, at start-up; exit with a clear message if it cannot be read."""
    try:
        with open(path, "rb") as f_in:
            model = pickle.load(f_in)
    except FileNotFoundError:
        sys.exit(f"{path} not found: run `python train.py` first.")
    except Exception as e:  # a damaged file can fail in many ways: say which, not a traceback
        sys.exit(f"{path} is not a readable model ({e!r}): run `python train.py` again.")
    if not hasattr(model, "predict_proba"):
        kind = type(model).__name__
        sys.exit(f"{path} holds a {kind}, not a model: run `python train.py` again.")
    return model


pipeline = load_model(MODEL_FILE)

app = FastAPI(
    title="churn",
    # Refuse bodies over 1 MB with a 413 before reading them (1,000 customers are ~0.5 MB).
    max_body_size=1_000_000,
    # FastAPI answers 400 to a body that is not UTF-8 JSON: say so in the OpenAPI schema.
    responses={400: {"description": "The body is not UTF-8 JSON"}},
)


@app.exception_handler(RequestValidationError)
def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    # The same 422 as FastAPI's own, without echoing the input back: an input of
    # NaN or Infinity cannot be written as JSON and would turn the 422 into a 500.
    errors = [{"type": e["type"], "loc": e["loc"], "msg": e["msg"]} for e in exc.errors()]
    return JSONResponse(status_code=422, content={"detail": errors})


@app.get("/ping")
def ping() -> dict:
    return {"status": "ok"}


@app.post("/predict")
def predict(customer: Customer) -> PredictResponse:
    # FastAPI has already checked the body against Customer: a bad request
    # never gets here, the client gets a 422 that names the field instead.
    churn_probability = float(pipeline.predict_proba([customer.model_dump()])[0, 1])
    return PredictResponse(churn_probability=churn_probability, churn=churn_probability >= 0.5)


@app.post("/predict_batch")
def predict_batch(
    customers: Annotated[list[Customer], Field(max_length=1000)],
) -> list[PredictResponse]:
    # One predict_proba call for the whole list: much faster than one per customer.
    if not customers:
        return []
    probabilities = pipeline.predict_proba([c.model_dump() for c in customers])[:, 1]
    return [PredictResponse(churn_probability=float(p), churn=p >= 0.5) for p in probabilities]


if __name__ == "__main__":
    import uvicorn

    # 0.0.0.0: answer connections from other machines too (127.0.0.1: this one only)
    uvicorn.run(app, host="0.0.0.0", port=9696)
