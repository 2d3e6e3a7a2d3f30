"""The GraphQL door: a federated strawberry schema translating GraphQL onto the services."""
