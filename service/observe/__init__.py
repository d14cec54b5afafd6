"""Observability, beside the adapters: metrics, health, the readiness watch, the HTTP endpoints,
tracing and the log set-up.

This file imports nothing: `service.observe.logs` is imported before `run` sets the metrics'
multiprocess directory, and prometheus-client must not be imported before it
(service/bootstrap/metrics_dir.py)."""
