"""The churn model as a web service.

Run:  uvicorn predict:app --host 0.0.0.0 --port 9696     (after python train.py)
Try:  python client.py, or open http://localhost:9696/docs
"""

import pickle
import sys

from fastapi import FastAPI

PIPELINE_FILE = "pipeline.bin"

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
def predict(customer: dict) -> dict:
    # The body is any JSON object: nothing checks the fields yet (step 04 does).
    # float(): predict_proba gives NumPy numbers, and FastAPI cannot write NumPy's bool
    # (churn_probability >= 0.5) as JSON: every request would get a 500.
    churn_probability = float(pipeline.predict_proba([customer])[0, 1])
    return {
        "churn_probability": churn_probability,
        "churn": churn_probability >= 0.5,
    }


if __name__ == "__main__":
    import uvicorn

    # 0.0.0.0: answer connections from other machines too (127.0.0.1: this one only)
    uvicorn.run(app, host="0.0.0.0", port=9696)
