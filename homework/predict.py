"""Stages 3 and 4: the credit-card approval model as a web service.

Run:  uv run uvicorn predict:app --host 0.0.0.0 --port 9696
"""

from fastapi import FastAPI, HTTPException

app = FastAPI(title="credit-card approval")

# TODO (stage 3): load pipeline.bin once, when the service starts.


# TODO (stage 3): GET /ping answers that the service is up.


@app.post("/predict")
def predict(client: dict) -> dict:
    # TODO (stage 3): score the client with the pipeline and answer
    #      {"card_probability": <float>, "card": <bool, probability >= 0.5>}.
    # TODO (stage 4): a Pydantic model for the request (and the response) instead of dict;
    #      accept the ranges the README states, answer 422 to anything else (NaN too).
    raise HTTPException(status_code=501, detail="TODO: not implemented yet")
