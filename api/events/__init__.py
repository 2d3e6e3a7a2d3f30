"""Events after they commit: the outbox fan-out to live subscribers (LISTEN/NOTIFY)."""
