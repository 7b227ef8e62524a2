"""Jinja2 templates and the two static files, loaded once.

Autoescaping is on for every template, and the environment is strict about undefined
names: prompts, PR comments, check log tails and notification messages are text other
people wrote, and are only ever rendered escaped. Links built from stored URLs pass
``safe_url``, which keeps http(s) and drops the rest (a ``javascript:`` URL would be a
script the Content-Security-Policy has to stop).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, cast
from urllib.parse import quote, urlsplit

import jinja2
from markupsafe import Markup
from starlette.responses import HTMLResponse, Response

from adapters.http.dashboard.views import (
    REASON_LABELS,
    STATUS_LABELS,
    Card,
    ago,
    notification_label,
    short_commit,
    title_prefix,
    zone_slug,
)
from orchestrator.domain.zones import BOARD_ZONES, ZONE_LABELS, Zone

HERE: Final = Path(__file__).parent
STATIC_DIR: Final = HERE / "static"
STATIC_MAX_AGE: Final = 86400


def safe_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL, else ``#``."""
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        return "#"
    return url if scheme in {"http", "https"} else "#"


def session_href(session_id: str) -> str:
    return "/s/" + quote(session_id, safe="")


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    media_type: str
    version: str

    def response(self) -> Response:
        headers = {"Cache-Control": f"public, max-age={STATIC_MAX_AGE}"}
        return Response(self.body, media_type=self.media_type, headers=headers)


def _static(name: str, media_type: str) -> StaticFile:
    body = (STATIC_DIR / name).read_bytes()
    return StaticFile(body, media_type, hashlib.sha256(body).hexdigest()[:12])


STATIC: Final = {
    "app.js": _static("app.js", "text/javascript; charset=utf-8"),
    "app.css": _static("app.css", "text/css; charset=utf-8"),
}


def static_url(name: str) -> str:
    """The asset's URL with its content hash, so a new daemon's file is never stale."""
    return f"/ui/static/{name}?v={STATIC[name].version}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.globals.update(
        ago=ago,
        notification_label=notification_label,
        board_zones=BOARD_ZONES,
        done_zone=Zone.DONE,
        reason_labels=REASON_LABELS,
        safe_url=safe_url,
        session_href=session_href,
        short_commit=short_commit,
        static_url=static_url,
        status_labels=STATUS_LABELS,
        title_prefix=title_prefix,
        zone_labels=ZONE_LABELS,
        zone_slug=zone_slug,
    )
    return env


ENV: Final = _environment()

CARD_CACHE_SIZE: Final = 4096


class CardCache:
    """Rendered cards by (card, age text): a board re-render after a reconnect re-renders
    only the cards that changed. The key is everything the macro reads, so a hit is
    exactly what rendering again would give; the least recently used entry goes first."""

    def __init__(self, size: int = CARD_CACHE_SIZE) -> None:
        self._size = size
        self._html: OrderedDict[tuple[Card, str], Markup] = OrderedDict()

    def __call__(self, card: Card, now: datetime) -> Markup:
        age = ago(card.activity.last_activity_at, now) if card.activity is not None else ""
        key = (card, age)
        html = self._html.get(key)
        if html is not None:
            self._html.move_to_end(key)
            return html
        # An autoescaping macro returns Markup: the card's text is already escaped in it.
        macro = ENV.get_template("_card.html").module.card  # type: ignore[attr-defined]
        html = cast("Markup", macro(card, age))
        self._html[key] = html
        if len(self._html) > self._size:
            self._html.popitem(last=False)
        return html

    def clear(self) -> None:
        self._html.clear()


CARD_HTML: Final = CardCache()
ENV.globals["card_html"] = CARD_HTML


def render(name: str, **context: Any) -> str:
    return ENV.get_template(name).render(**context)


def html(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(render(name, **context), status_code=status)


__all__ = [
    "ENV",
    "STATIC",
    "StaticFile",
    "html",
    "render",
    "safe_url",
    "session_href",
    "static_url",
]
