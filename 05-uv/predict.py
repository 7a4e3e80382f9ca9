"""The churn model as a web service, with typed, validated input and output.

Run:  uvicorn predict:app --host 0.0.0.0 --port 9696     (after python train.py)
Try:  python client.py, or open http://localhost:9696/docs
"""

import pickle
import sys
from typing import Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

PIPELINE_FILE = "pipeline.bin"

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
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE]})

    gender: Literal["female", "male"]
    seniorcitizen: Literal[0, 1]  # a category written as a number: 1 = senior citizen
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
    tenure: int = Field(ge=0, description="months with the company")
    monthlycharges: float = Field(ge=0)
    totalcharges: float = Field(ge=0)


class PredictResponse(BaseModel):
    churn_probability: float
    churn: bool


try:
    with open(PIPELINE_FILE, "rb") as f_in:
        pipeline = pickle.load(f_in)
except FileNotFoundError:
    sys.exit(f"{PIPELINE_FILE} not found: run `python train.py` first.")

app = FastAPI(title="churn")


@app.get("/ping")
def ping() -> dict:
    return {"status": "ok"}


@app.post("/predict")
def predict(customer: Customer) -> PredictResponse:
    # FastAPI has already checked the body against Customer: a bad request
    # never gets here, the client gets a 422 that names the field instead.
    churn_probability = float(pipeline.predict_proba([customer.model_dump()])[0, 1])
    return PredictResponse(churn_probability=churn_probability, churn=churn_probability >= 0.5)


if __name__ == "__main__":
    import uvicorn

    # 0.0.0.0: answer connections from other machines too (127.0.0.1: this one only)
    uvicorn.run(app, host="0.0.0.0", port=9696)
