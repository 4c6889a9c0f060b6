"""Where studies live: the default storage (a SQLite file under ``studies/``, a journal for a
``.log`` path, an RDB URL with heartbeats), journal safety and the liveness of a trial's process."""
