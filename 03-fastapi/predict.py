"""The churn model as a web service.

Run:  uvicorn predict:app --host 0.0.0.0 --port 9696     (after python train.py)
Try:  python client.py, or open http://localhost:9696/docs
"""

import pickle
import sys

from fastapi import FastAPI

MODEL_FILE = "pipeline.bin"


def load_model(path: str):
    """Load the pipeline once, at start-up; exit with a clear message if it cannot be read."""
    try:
        with open(path, "rb") as f_in:
            model = pickle.load(f_in)
    except FileNotFoundError:
        sys.exit(f"{path} not found: run `python train.py` first, in this folder.")
    except Exception as e:  # a damaged file can fail in many ways: say which, not a traceback
        sys.exit(f"{path} is not a readable model ({e!r}): run `python train.py` again.")
    if not hasattr(model, "predict_proba"):
        kind = type(model).__name__
        sys.exit(f"{path} holds a {kind}, not a model: run `python train.py` again.")
    return model


pipeline = load_model(MODEL_FILE)

app = FastAPI(title="churn")


@app.get("/ping")
async def ping() -> dict:
    # async def: nothing here blocks, so FastAPI answers on its event loop directly.
    return {"status": "ok"}


# def (not async def): predict_proba is CPU work that blocks; FastAPI runs a def
# endpoint in a thread pool, so other requests are not held up while it computes.
@app.post("/predict")
def predict(customer: dict) -> dict:
    # The body is any JSON object: nothing checks the fields yet (step 04 does).
    churn_probability = float(pipeline.predict_proba([customer])[0, 1])
    return {
        "churn_probability": churn_probability,
        "churn": churn_probability >= 0.5,
    }


if __name__ == "__main__":
    import uvicorn

    # 0.0.0.0: accept connections from outside this machine (or container);
    # 127.0.0.1 would only answer on this machine itself.
    uvicorn.run(app, host="0.0.0.0", port=9696)
