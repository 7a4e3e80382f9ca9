"""OPTIONAL fast path: the churn service without scikit-learn (same contract as 05-uv/predict.py).

Run:  FASTPATH_WEIGHTS=weights.json uvicorn bench.fastpath.app:app --port 9696
The request and response models are the lesson's, copied (tests/test_fastpath.py checks that their
JSON schemas stay equal); only the scoring differs: a weight lookup instead of predict_proba.
"""

import os
from typing import Annotated, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from bench.fastpath.model import WeightsModel

YesNo = Literal["yes", "no"]
YesNoService = Literal["yes", "no", "no_internet_service"]


class Customer(BaseModel):
    """One customer, as the model saw them in training (lower case, "_" for spaces)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    gender: Literal["female", "male"]
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
        "electronic_check",
        "mailed_check",
        "bank_transfer_(automatic)",
        "credit_card_(automatic)",
    ]
    tenure: int = Field(ge=0, le=1200, description="months with the company")
    monthlycharges: float = Field(ge=0, le=10_000)
    totalcharges: float = Field(ge=0, le=10_000_000)


class PredictResponse(BaseModel):
    churn_probability: float
    churn: bool


model = WeightsModel.load(os.environ.get("FASTPATH_WEIGHTS", "weights.json"))

app = FastAPI(title="churn (fast path)")


@app.exception_handler(RequestValidationError)
async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [{"type": e["type"], "loc": e["loc"], "msg": e["msg"]} for e in exc.errors()]
    return JSONResponse(status_code=422, content={"detail": errors})


@app.get("/ping")
async def ping() -> dict[str, str]:
    return {"status": "ok"}


# async def: scoring takes microseconds, so it runs on the event loop, not in a worker thread.
@app.post("/predict")
async def predict(customer: Customer) -> PredictResponse:
    p = model.predict_one(customer.model_dump())
    return PredictResponse(churn_probability=p, churn=p >= 0.5)


@app.post("/predict_batch")
async def predict_batch(
    customers: Annotated[list[Customer], Field(max_length=1000)],
) -> list[PredictResponse]:
    probabilities = (model.predict_one(c.model_dump()) for c in customers)
    return [PredictResponse(churn_probability=p, churn=p >= 0.5) for p in probabilities]
