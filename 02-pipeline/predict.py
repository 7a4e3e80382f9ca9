"""Load pipeline.bin and score one customer.

Run:  python predict.py          (after python train.py)
"""

import pickle
import sys

PIPELINE_FILE = "pipeline.bin"

# Customer 7590-VHVEG, written the way train.py preprocesses the data:
# lower-case values, spaces replaced by "_".
customer = {
    "gender": "female",
    "seniorcitizen": 0,
    "partner": "yes",
    "dependents": "no",
    "phoneservice": "no",
    "multiplelines": "no_phone_service",
    "internetservice": "dsl",
    "onlinesecurity": "no",
    "onlinebackup": "yes",
    "deviceprotection": "no",
    "techsupport": "no",
    "streamingtv": "no",
    "streamingmovies": "no",
    "contract": "month-to-month",
    "paperlessbilling": "yes",
    "paymentmethod": "electronic_check",
    "tenure": 1,
    "monthlycharges": 29.85,
    "totalcharges": 29.85,
}

try:
    with open(PIPELINE_FILE, "rb") as f_in:
        pipeline = pickle.load(f_in)
except FileNotFoundError:
    sys.exit(f"{PIPELINE_FILE} not found: run `python train.py` first.")

# The pipeline takes the dict as it is: DictVectorizer runs inside it.
churn_probability = pipeline.predict_proba([customer])[0, 1]

print(f"churn probability: {churn_probability:.3f}")
print(f"churn: {churn_probability >= 0.5}")
