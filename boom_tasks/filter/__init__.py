"""User filters: MongoDB aggregation pipelines run over each batch of alerts.

:mod:`~boom_tasks.filter.validate` accepts or refuses a pipeline (listing every
problem at once), and :mod:`~boom_tasks.filter.pipeline` wraps an accepted one
into the pipeline the broker runs: its batch and permission ``$match`` first, the
object's history joined in only when the filter reads it.
"""
