"""OPTIONAL fast path: the churn model scored without scikit-learn.

Not part of the lesson (the lesson steps keep `pipeline.predict_proba`). The logistic regression's
weights are exported once from the fitted pipeline (export.py, which imports scikit-learn), then
scored by looking up one weight per feature value (model.py), so that the service (app.py) starts
without importing scikit-learn. tests/test_fastpath.py proves it equals predict_proba to 1e-9.
"""
