"""boom-tasks: an astronomical alert broker on Kafka, Dramatiq, Valkey and MongoDB."""

__version__ = "0.1.0"
