"""Reliable delivery of committed events to subscribers' endpoints (the delivery worker)."""
