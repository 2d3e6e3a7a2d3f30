"""Authentication: OAuth 2.0 token endpoint, client registry, signing keys, bearer-token checks."""
