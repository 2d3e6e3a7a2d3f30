"""Console single sign-on settings: the flat PEERBRIDGE_OIDC_* provider and the JSON list of
organizations' own providers, refused when they cannot work."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from api.settings import Settings

ORG = "7f1c1d1e-1111-4111-8111-111111111111"


def _listed(key: str = "harbor", issuer: str = "https://login.harbor.example") -> dict[str, str]:
    return {
        "key": key,
        "issuer": issuer,
        "client_id": "console",
        "client_secret": "listed-secret-value",
        "display_name": "Harbor",
        "organization": ORG,
    }


def test_no_provider_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().single_sign_on_providers == ()


def test_the_flat_provider_and_the_listed_ones_with_their_addresses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PEERBRIDGE_OIDC_ISSUER", "https://idp.network.example")
    monkeypatch.setenv("PEERBRIDGE_OIDC_CLIENT_ID", "console")
    monkeypatch.setenv("PEERBRIDGE_OIDC_CLIENT_SECRET", "flat-secret-value")
    monkeypatch.setenv("PEERBRIDGE_OIDC_PROVIDERS", json.dumps([_listed()]))
    settings = Settings()
    flat, harbor = settings.single_sign_on_providers
    assert (flat.start_path, flat.callback_path) == ("/console/sso/start", "/console/sso/callback")
    assert harbor.callback_path == "/console/sso/harbor/callback"
    assert str(harbor.organization) == ORG
    assert "secret-value" not in repr(settings)


@pytest.mark.parametrize(
    "environment",
    [
        {"PEERBRIDGE_OIDC_ISSUER": "https://idp.example"},  # no client id or secret
        {"PEERBRIDGE_OIDC_PROVIDERS": json.dumps([_listed(), _listed()])},  # a key twice
        {"PEERBRIDGE_OIDC_PROVIDERS": json.dumps([_listed("default")])},
        {"PEERBRIDGE_OIDC_PROVIDERS": json.dumps([_listed("Not A Key")])},
        {"PEERBRIDGE_OIDC_PROVIDERS": json.dumps([{**_listed(), "allowed_roles": "admin"}])},
        {"PEERBRIDGE_OIDC_PROVIDERS": json.dumps([{**_listed(), "surprise": 1}])},
        {
            "PEERBRIDGE_ENVIRONMENT": "production",
            "DATABASE_URL": "postgresql://db/peerbridge",
            "PEERBRIDGE_PUBLIC_BASE_URL": "https://peerbridge.example",
            "PEERBRIDGE_OIDC_PROVIDERS": json.dumps([_listed(issuer="http://login.example")]),
        },
    ],
)
def test_a_provider_that_cannot_work_is_refused_at_start(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()
