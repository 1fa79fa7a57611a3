"""Replay a survey night into Kafka, as the survey itself would stream it.

Open the files in order: :mod:`~boom_tasks.replay.download` fetches a public
night, :mod:`~boom_tasks.replay.archive` reads its packets,
:mod:`~boom_tasks.replay.producer` sends them to the night's topic and
:mod:`~boom_tasks.replay.cli` is ``boom-produce``.
"""
