"""What operators watch: stage rates and latencies, queues, consumer lag, quarantine.

Workers record per-stage counts in Valkey (:mod:`.stats`); the dashboard and the
Prometheus ``/metrics`` endpoint read them, with the queues' real state
(:mod:`.queues`), the bridge's consumer lag (:mod:`.lag`) and the quarantine
(:mod:`.quarantine`).
"""
