"""The output stage: alerts that passed users' filters, as Avro messages on Kafka.

:mod:`~boom_tasks.output.message` turns stored documents into a message,
:mod:`~boom_tasks.output.schema` encodes and decodes it (schema files under
``schema/``), and ``boom-print`` / ``boom-monitor`` read the published topics.
"""
