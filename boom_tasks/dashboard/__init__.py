"""The operators' dashboard (``boom-dashboard``): queues, dead letters, rates, latency, lag.

Server-rendered HTML with no script or style from outside (it works offline),
and the same figures for Prometheus at ``/metrics``.
"""
