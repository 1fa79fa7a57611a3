"""Worker processes that survive faults.

- :mod:`.supervise`: ``boom-workers``, one ``dramatiq`` process per slot, each
  restarted with backoff when it dies, its unacknowledged messages requeued at once;
- :mod:`.recovery`: requeue what a dead worker process had fetched but not acknowledged;
- :mod:`.poison`: count each message's deliveries, and divert a message that keeps
  killing its worker (:mod:`.divert`: split the batch, quarantine the single culprit).
"""
