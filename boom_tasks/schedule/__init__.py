"""boom-scheduler: cron jobs stored in MongoDB, each run claimed so it happens once."""
