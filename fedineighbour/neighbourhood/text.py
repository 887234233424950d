"""A resident's plain text -> the HTML we publish: paragraphs, links, mentions, hashtags.

Every piece of text and every attribute is escaped here, and a mention links only to an http(s) URL: the result is
stored as Note.content and shown with |safe on our pages (templates/note.html)."""

from __future__ import annotations

import html
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fedineighbour.neighbourhood.addresses import is_http_url

MENTION_RE = re.compile(r"(?<![\w/])@([A-Za-z0-9_.\-]+)(?:@([A-Za-z0-9.\-]+(?::\d+)?))?")
URL_RE = re.compile(r"https?://[^\s<>\"]+[^\s<>\".,;:!?)\]]")
TAG_RE = re.compile(r"(?<![\w&#/])#(\w{1,64})")

MentionResolver = Callable[[str], Awaitable[tuple[str, str] | None]]  # "user@host" -> (actor id, profile url)


@dataclass
class Rendered:
    html: str
    mentions: list[dict] = field(default_factory=list)  # [{"href", "name"}]
    hashtags: list[str] = field(default_factory=list)


async def render_plain_text(text: str, resolve: MentionResolver, tag_url: Callable[[str], str],
                            max_mentions: int | None = None) -> Rendered:
    """`max_mentions`: only the first so many distinct mentions are resolved (each may cost a WebFinger
    and an actor fetch); the others stay plain text."""
    out = Rendered(html="")
    wanted = {m.group(0): m for m in MENTION_RE.finditer(text)}
    if max_mentions is not None:
        wanted = dict(list(wanted.items())[:max_mentions])
    resolved: dict[str, tuple[str, str, str]] = {}
    for raw, m in wanted.items():
        handle = f"{m.group(1)}@{m.group(2)}" if m.group(2) else m.group(1)
        hit = await resolve(handle)
        if hit and not is_http_url(hit[1]):  # a profile URL stored before remote URLs were checked
            hit = (hit[0], hit[0]) if is_http_url(hit[0]) else None
        if hit:
            resolved[raw] = (hit[0], hit[1], m.group(1))
            out.mentions.append({"href": hit[0], "name": "@" + handle})

    def render_segment(segment: str) -> str:
        pieces: list[str] = []
        pos = 0
        pattern = re.compile("|".join(f"(?:{p.pattern})" for p in (URL_RE, MENTION_RE, TAG_RE)))
        for m in pattern.finditer(segment):
            pieces.append(html.escape(segment[pos:m.start()]))
            token = m.group(0)
            if token.startswith("http"):
                url = html.escape(token)
                pieces.append(f'<a href="{url}" rel="nofollow noopener noreferrer" target="_blank">{url}</a>')
            elif token.startswith("@") and token in resolved:
                _actor, profile, user = resolved[token]
                pieces.append(f'<span class="h-card"><a href="{html.escape(profile)}" class="u-url mention">'
                              f'@<span>{html.escape(user)}</span></a></span>')
            elif token.startswith("#"):
                name = token[1:]
                if name.lower() not in out.hashtags:
                    out.hashtags.append(name.lower())
                pieces.append(f'<a href="{html.escape(tag_url(name))}" class="mention hashtag" rel="tag">'
                              f'#<span>{html.escape(name)}</span></a>')
            else:
                pieces.append(html.escape(token))
            pos = m.end()
        pieces.append(html.escape(segment[pos:]))
        return "".join(pieces)

    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    out.html = "".join("<p>" + "<br>".join(render_segment(line) for line in p.split("\n")) + "</p>"
                       for p in paragraphs)
    return out
