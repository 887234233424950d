"""Remote HTML -> HTML we may store and show (nh3, Mastodon-like rules), and plain text <-> HTML.

Everything here is a pure function of its input: no cleaner object is built at import time.
"""

from __future__ import annotations

import html
import re

import nh3

ALLOWED_TAGS = frozenset({"p", "span", "br", "a", "del", "pre", "code", "em", "strong", "b", "i", "u",
                          "ul", "ol", "li", "blockquote"})
# "rel" is not listed for <a>: nh3 writes LINK_REL on every link instead (and refuses both at once).
ALLOWED_ATTRIBUTES = {"a": {"href", "class"}, "span": {"class"}}
LINK_REL = "nofollow noopener noreferrer"
URL_SCHEMES = frozenset({"http", "https", "mailto"})
# Tags dropped together with everything inside them (other unknown tags are unwrapped, their text kept).
DROPPED_WITH_CONTENT = frozenset({"script", "style", "iframe", "noscript", "template", "object", "svg",
                                  "math", "textarea", "select", "title"})
# Mastodon keeps microformats classes and a few of its own; anything else could restyle our pages.
CLASS_RE = re.compile(r"^(?:(?:h|p|u|dt|e)-[\w-]+|mention|hashtag|ellipsis|invisible)$")
HEADING_OPEN_RE = re.compile(r"(?i)<h[1-6](?:\s[^>]*)?>")
HEADING_CLOSE_RE = re.compile(r"(?i)</h[1-6]\s*>")
URL_IN_TEXT_RE = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")
# The HTML parser under nh3 takes time that grows with the square of the nesting (20,000 nested <div>: 3 s, with
# the event loop waiting). Beyond these bounds remote HTML is not parsed: its text is kept, as plain paragraphs.
MAX_HTML_CHARS = 512 * 1024
MAX_TAGS = 5000
MAX_NESTING = 100
PLAIN_MAX_CHARS = 50_000  # remote plain text (Markdown, MFM) kept
FALLBACK_CHARS = 20_000  # text kept, as one paragraph, from HTML over those bounds
TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)[^>]*>")
ANY_TAG_RE = re.compile(r"<[^>]*>")
VOID_TAGS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
                       "track", "wbr"})
# Opening one of these closes an open one of the same name: "<p>a<p>b" is two paragraphs side by side, not nested.
SIBLING_TAGS = frozenset({"p", "li", "dt", "dd", "tr", "td", "th", "option"})


def too_complex(html_text: str) -> bool:
    """Whether remote HTML is too big or too deeply nested to parse on the event loop. One linear scan of the
    tags, counting nesting about the way a parser does (an end tag closes only an element that is open)."""
    if len(html_text) > MAX_HTML_CHARS:
        return True
    open_tags: list[str] = []
    for count, m in enumerate(TAG_RE.finditer(html_text)):
        if count >= MAX_TAGS:
            return True
        name = m.group(2).lower()
        if name in VOID_TAGS or m.group(0).endswith("/>"):
            continue
        if m.group(1) or name in SIBLING_TAGS:
            if name in open_tags:  # at most MAX_NESTING long
                del open_tags[len(open_tags) - 1 - open_tags[::-1].index(name):]
            if m.group(1):
                continue
        open_tags.append(name)
        if len(open_tags) > MAX_NESTING:
            return True
    return False


def _strip_tags(html_text: str) -> str:
    """Plain text of HTML without parsing it (for documents too_complex refuses)."""
    with_breaks = re.sub(r"(?i)<br\s*/?>|</p\s*>", "\n\n", html_text)
    return html.unescape(ANY_TAG_RE.sub("", with_breaks))


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "href":
        lowered = value.strip().lower()
        if lowered.startswith(("http://", "https://", "mailto:")):
            return value.strip()
        return None  # javascript:, data:, relative links and the like
    if attribute == "class":
        kept = [token for token in value.split() if CLASS_RE.match(token)]
        return " ".join(kept) or None
    return value


def sanitize_html(html_text: str) -> str:
    """Keep Mastodon's tag set; links get rel="nofollow noopener noreferrer"; only http(s)/mailto hrefs."""
    if not isinstance(html_text, str) or not html_text:
        return ""
    if too_complex(html_text):
        return plain_to_html(" ".join(_strip_tags(html_text[:4 * FALLBACK_CHARS]).split())[:FALLBACK_CHARS])
    return _clean(html_text)


def _clean(html_text: str) -> str:
    # Headings become bold paragraphs, as on Mastodon, instead of running into the next line.
    html_text = HEADING_CLOSE_RE.sub("</strong></p>", HEADING_OPEN_RE.sub("<p><strong>", html_text))
    cleaned = nh3.clean(
        html_text,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_filter_attribute,
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
    )
    return cleaned.strip()


def _link_urls(escaped_line: str) -> str:
    def link(m: re.Match[str]) -> str:
        url = m.group(0)
        return f'<a href="{url}">{url}</a>'

    return URL_IN_TEXT_RE.sub(link, escaped_line)


def plain_to_html(text: str) -> str:
    """Plain text (or Markdown/MFM we do not render) -> paragraphs and line breaks, URLs linked; sanitised."""
    if not isinstance(text, str) or not text.strip():
        return ""
    # Cut like too_complex would: each line becomes a tag for the parser below (250,000 lines took 2 s).
    text = text[:PLAIN_MAX_CHARS].replace("\r\n", "\n").replace("\r", "\n").strip()
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    rendered = "".join(
        "<p>" + "<br>".join(_link_urls(html.escape(line, quote=True)) for line in p.split("\n")) + "</p>"
        for p in paragraphs
    )
    return _clean(rendered)  # flat and escaped: no need for too_complex


def html_to_text(html_text: str) -> str:
    """HTML -> one plain line (tags dropped, entities decoded, spaces collapsed), e.g. a report comment."""
    if not isinstance(html_text, str) or not html_text:
        return ""
    if too_complex(html_text):
        return " ".join(_strip_tags(html_text[:4 * FALLBACK_CHARS]).split())[:FALLBACK_CHARS]
    with_breaks = re.sub(r"(?i)<br\s*/?>|</p\s*>", " ", html_text)
    stripped = nh3.clean(with_breaks, tags=set(), clean_content_tags=set(DROPPED_WITH_CONTENT))
    return " ".join(html.unescape(stripped).split())


def looks_like_html(text: str) -> bool:
    return bool(re.search(r"<[a-zA-Z][^>]*>|&[a-zA-Z#][a-zA-Z0-9]*;", text))
