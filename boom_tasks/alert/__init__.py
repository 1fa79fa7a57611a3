"""Survey-independent alert parts: Avro container decoding and the documents ingest writes."""
