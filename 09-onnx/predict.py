"""The churn model as a web service, scored by ONNX Runtime: no scikit-learn needed.

Run:  uvicorn predict:app --host 0.0.0.0 --port 9696     (after python train.py)
Try:  python client.py, or open http://localhost:9696/docs
"""

import asyncio
import contextlib
import os
import sys
from typing import Annotated, Literal

import onnxruntime as ort
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

ONNX_FILE = "pipeline.onnx"
# The largest body the service reads: 1,000 customers, the most /predict_batch takes, are ~0.5 MB.
MAX_BODY_SIZE = 1_000_000
# What the service reads and throws away of a body it refuses, at most, before it answers.
DISCARD_SIZE = 10_000_000
DISCARD_SECONDS = 5

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


def load_model(path: str) -> ort.InferenceSession:
    """Load the ONNX model; if it cannot be read, stop with a message that says what to do."""
    if not os.path.isfile(path):
        sys.exit(f"{path} not found: run `python train.py` first.")
    options = ort.SessionOptions()
    # One thread: the model is tiny; more threads would only wait for work (and use CPU).
    options.intra_op_num_threads = 1
    try:
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # a damaged file: say which
        problem = str(e)
    # Outside the `except`: the message says it all, without ONNX Runtime's traceback.
    sys.exit(f"{path} is not a readable ONNX model ({problem}): run `python train.py` again.")


def features(customer: Customer) -> dict[str, float]:
    """The customer as the model's DictVectorizer sees them: a number under its own name, a
    text value as "field=value": 1.0 (one-hot): {"contract=two_year": 1.0, "tenure": 12.0, …}.
    """
    result = {}
    for field, value in customer.model_dump().items():
        if isinstance(value, str):
            result[f"{field}={value}"] = 1.0
        else:
            result[field] = float(value)
    return result


def churn_probability(customer: Customer) -> float:
    # "probabilities" is [[P(no churn), P(churn)]] for the one customer in the map.
    session = app.state.session  # loaded by lifespan() at start-up
    (probabilities,) = session.run(["probabilities"], {"customer": features(customer)})
    return float(probabilities[0, 1])


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI):
    # FastAPI runs this once when the server starts, before the first request: the model is
    # loaded once and kept in app.state, where every request finds it.
    app.state.session = load_model(ONNX_FILE)
    yield  # the server runs and answers requests here, until it is stopped


app = FastAPI(
    title="churn",
    lifespan=lifespan,
    # FastAPI answers 400 to a body that is not UTF-8 JSON: say so in the OpenAPI schema.
    responses={400: {"description": "The body is not UTF-8 JSON"}},
)


class LimitBodySize:
    """Refuse a request body over MAX_BODY_SIZE before FastAPI reads it: 413 Content Too Large.

    An ASGI middleware: uvicorn hands it every request before FastAPI sees it. `scope` holds
    the request's method, path and headers, `receive()` returns the next piece of the body,
    and `send()` writes the answer.
    """

    def __init__(self, app):
        self.app = app  # FastAPI, which gets every request this middleware lets through

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers", []))
        if b"transfer-encoding" in headers:  # a body that does not say its size: cannot check
            status, detail = 411, "Length Required: send the body with a Content-Length"
        elif int(headers.get(b"content-length", 0)) > MAX_BODY_SIZE:
            status, detail = 413, f"Content Too Large: the limit is {MAX_BODY_SIZE} bytes"
        else:
            await self.app(scope, receive, send)
            return
        await discard_body(receive)
        refusal = JSONResponse(
            status_code=status, content={"detail": detail}, headers={"Connection": "close"}
        )
        await refusal(scope, receive, send)


async def discard_body(receive) -> None:
    """Read what the client still sends and throw it away, at most DISCARD_SIZE bytes for at
    most DISCARD_SECONDS. A client that is still sending when the server answers and closes
    the connection gets an error (BrokenPipeError, "connection reset") instead of the answer;
    web servers such as nginx read on for a while for this reason."""
    discarded = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DISCARD_SECONDS):
            while discarded <= DISCARD_SIZE:
                message = await receive()
                discarded += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return


app.add_middleware(LimitBodySize)


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
    probability = churn_probability(customer)
    return PredictResponse(churn_probability=probability, churn=probability >= 0.5)


@app.post("/predict_batch")
def predict_batch(
    customers: Annotated[list[Customer], Field(max_length=1000)],
) -> list[PredictResponse]:
    # The model takes one customer per run (its input is one map): one run each.
    probabilities = [churn_probability(c) for c in customers]
    return [PredictResponse(churn_probability=p, churn=p >= 0.5) for p in probabilities]


if __name__ == "__main__":
    import uvicorn

    # 0.0.0.0: answer connections from other machines too (127.0.0.1: this one only)
    uvicorn.run(app, host="0.0.0.0", port=9696)
