"""PeerBridge: one care picture for clinics and peer-support organizations."""
