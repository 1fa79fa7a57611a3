"""The thin Kafka → Dramatiq bridge: ``boom-bridge ZTF``."""
