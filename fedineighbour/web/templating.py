"""Jinja2 templates with Babel translations (French by default for a French commune)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from babel.dates import format_datetime
from babel.support import Translations
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request

from fedineighbour.config import Settings
from fedineighbour.neighbourhood.addresses import is_http_url

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
LANGUAGES = ("fr", "en")


def http_url(value: object) -> str:
    """For href attributes: autoescaping does not stop a javascript: URL, so anything but http(s) becomes "#"."""
    return value if isinstance(value, str) and is_http_url(value) else "#"


def pick_language(request: Request, default: str) -> str:
    wanted = request.query_params.get("lang") or request.cookies.get("lang")
    if wanted in LANGUAGES:
        return wanted
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return default if default in LANGUAGES else "fr"


class Templates:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._envs: dict[str, Environment] = {}

    def env(self, lang: str) -> Environment:
        if lang not in self._envs:
            env = Environment(loader=PackageLoader("fedineighbour", "templates"),
                              autoescape=select_autoescape(["html"]), extensions=["jinja2.ext.i18n"])
            # added by the jinja2.ext.i18n extension at run time, so Environment's type does not declare it
            env.install_gettext_translations(  # type: ignore[attr-defined]
                Translations.load(str(LOCALE_DIR), [lang]), newstyle=True)
            env.filters["datetime"] = lambda dt: format_datetime(dt, format="medium", locale=lang) if dt else ""
            env.filters["http_url"] = http_url
            self._envs[lang] = env
        return self._envs[lang]

    def render(self, request: Request, name: str, **context: Any) -> str:
        lang = pick_language(request, self.settings.instance.language)
        return self.env(lang).get_template(name).render(lang=lang, instance=self.settings.instance,
                                                       town=self.settings.town, **context)


def build_templates(settings: Settings) -> Templates:
    return Templates(settings)
