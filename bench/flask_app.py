"""The same model served the course's previous way: Flask, run by gunicorn.

Run (in a folder with pipeline.bin):  gunicorn --bind 127.0.0.1:9696 flask_app:app
As in the course, there is no input validation: a bad request is a 500, not a 422.
"""

import pickle

from flask import Flask, jsonify, request

with open("pipeline.bin", "rb") as f_in:
    pipeline = pickle.load(f_in)

app = Flask("churn")


@app.get("/ping")
def ping():  # type: ignore[no-untyped-def]
    return jsonify(status="ok")


@app.post("/predict")
def predict():  # type: ignore[no-untyped-def]
    customer = request.get_json()
    churn_probability = float(pipeline.predict_proba([customer])[0, 1])
    return jsonify(churn_probability=churn_probability, churn=churn_probability >= 0.5)
