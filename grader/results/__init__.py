"""Results: the model of one grading (`report`), its renderings (`render`), atomic writes."""
