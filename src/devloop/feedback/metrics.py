"""Prometheus metrics of a run, on a private registry (several runs can live in one process).

Metric names (all prefixed `devloop_`):
  steps_total                      agent steps
  tokens_total{kind}               prompt / completion tokens
  model_latency_seconds            histogram of model request latency
  test_runs_total{status}          hook test runs by outcome: green, failing, timeout
  test_failures_total              failing tests seen, summed over test runs
  test_latency_seconds             histogram of the test process's own wall time
  feedback_overhead_seconds        histogram: edit done -> summary ready, minus the test process's time
  checkpoints_total                checkpoints taken
  rollbacks_total                  rollbacks to a checkpoint
  rescues_total{rule}              rescue rules applied
"""

from __future__ import annotations

from typing import Any

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    """The run's counters and histograms; served over HTTP on `port` when given (0 = a free port)."""

    def __init__(self, port: int | None = None, *, addr: str = "127.0.0.1") -> None:
        # Imported here: the module is loaded by every command that may run an agent (~13 ms).
        from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

        self.registry = CollectorRegistry()
        reg = self.registry
        self.steps = Counter("devloop_steps", "Agent steps.", registry=reg)
        self.tokens = Counter("devloop_tokens", "Tokens used.", ["kind"], registry=reg)
        self.model_latency = Histogram(
            "devloop_model_latency_seconds", "Model request latency.", buckets=_LATENCY_BUCKETS, registry=reg
        )
        self.test_runs = Counter("devloop_test_runs", "Hook test runs.", ["status"], registry=reg)
        self.test_failures = Counter(
            "devloop_test_failures", "Failing tests seen over test runs.", registry=reg
        )
        self.test_latency = Histogram(
            "devloop_test_latency_seconds", "Test process wall time.", buckets=_LATENCY_BUCKETS, registry=reg
        )
        self.overhead = Histogram(
            "devloop_feedback_overhead_seconds",
            "Edit done to summary ready, minus the test process.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
            registry=reg,
        )
        self.checkpoints = Counter("devloop_checkpoints", "Checkpoints taken.", registry=reg)
        self.rollbacks = Counter("devloop_rollbacks", "Rollbacks to a checkpoint.", registry=reg)
        self.rescues = Counter("devloop_rescues", "Rescue rules applied.", ["rule"], registry=reg)
        self._server: Any = None
        self.port: int | None = None
        if port is not None:
            server, _thread = start_http_server(port, addr=addr, registry=reg)
            self._server = server
            self.port = int(server.server_port)

    def on_event(self, event: dict[str, Any]) -> None:
        """An EventLog listener: count checkpoints, rollbacks and rescues however they were emitted."""
        kind = event.get("kind")
        if kind == "checkpoint":
            self.checkpoints.inc()
        elif kind == "rollback":
            self.rollbacks.inc()
        elif kind == "rescue":
            self.rescues.labels(rule=str(event.get("rule") or event.get("test") or "unknown")).inc()

    def text(self) -> str:
        """The exposition text, as a scrape would see it."""
        from prometheus_client.exposition import generate_latest

        return generate_latest(self.registry).decode()

    def close(self) -> None:
        """Stop serving (idempotent)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
