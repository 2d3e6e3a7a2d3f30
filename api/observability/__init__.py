"""What an operator sees of a running PeerBridge: Prometheus metrics (`metrics`, `http`)."""
