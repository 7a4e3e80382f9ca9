"""Send one customer to the churn service and print its answer.

Run:  python client.py                                 (the service on this machine)
      python client.py https://your-app.fly.dev/predict
"""

import sys

import requests

url = sys.argv[1] if len(sys.argv) > 1 else "http://localhost:9696/predict"

# Without the scheme, requests cannot tell which protocol to speak.
if not url.startswith(("http://", "https://")):
    sys.exit(f"{url!r} has no scheme: write http://{url}")

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
    response = requests.post(url, json=customer, timeout=10)
except requests.ConnectionError:  # nothing answers at that address: one line, not a traceback
    sys.exit(f"could not connect to {url}: start the service first (see this step's README)")
response.raise_for_status()  # a 4xx/5xx answer becomes an exception, not a silent None
result = response.json()

print(f"churn probability: {result['churn_probability']:.3f}")
if result["churn"]:
    print("send a promotional email to this customer")
else:
    print("no email for this customer")
