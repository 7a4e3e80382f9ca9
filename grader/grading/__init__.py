"""One submission's grading: what the contracts ask (session), the run's schedule (timeline),
the probe's protocol, the requests, stage 6, what the sandbox may see."""
