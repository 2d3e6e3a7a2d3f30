"""Files served from the package itself under /static (GraphiQL's, the console's): nothing a
page needs comes from a CDN, which clinic and hospital networks often cannot reach."""

from __future__ import annotations

from pathlib import Path

from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from api.settings import Settings

STATIC_DIR = Path(__file__).parent / "static"

# GraphiQL's React renders inline styles and data: icons; scripts come from this origin only.
_GRAPHIQL_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def graphiql_page() -> HTMLResponse:
    """GraphiQL's page, loading React and GraphiQL from /static/graphiql."""
    return HTMLResponse(
        (STATIC_DIR / "graphiql" / "index.html").read_text(encoding="utf-8"),
        headers={"content-security-policy": _GRAPHIQL_CSP},
    )


def routes(settings: Settings) -> list[BaseRoute]:
    return [Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static")]
