"""Use cases: one function per thing a user does, each behind the one policy point."""
