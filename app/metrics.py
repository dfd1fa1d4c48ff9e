"""Prometheus metrics of one app: request counts and latency by route, index size, model version."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("moodspace_requests", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("moodspace_request_seconds", "Request latency", ["route"], registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.index_size = Gauge("moodspace_index_size", "Items in the serving index", registry=self.registry)
        self.model_info = Info("moodspace_model", "Model bundle in use", registry=self.registry)
