"""A model card (README.md) as HTML that can carry no script.

The markdown renderer is markdown-it-py (CommonMark, plus tables and strikethrough) with
raw HTML **off**: ``<script>``, ``<img onerror=...>`` and any other tag in a card come out
as escaped text, not markup. Its link check refuses ``javascript:``, ``vbscript:``,
``file:`` and non-image ``data:`` URLs (the link is left as text). Relative links and
images point into the repo at the revision shown, as they do on huggingface.co.

The YAML front matter (the card's metadata: license, tags, ...) is split off and returned
as data, for the page to show as a table; it never reaches the markdown renderer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token


@dataclass(frozen=True)
class Card:
    """A rendered card: its metadata (empty without front matter) and its body's HTML."""

    html: str
    metadata: dict[str, str] = field(default_factory=dict)
    #: The front matter as written, when it is not a YAML mapping (shown as text).
    bad_metadata: str | None = None


def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(
        ["table", "strikethrough"]
    )


MARKDOWN = _markdown()


def split_front_matter(text: str) -> tuple[str | None, str]:
    """(the YAML between the leading ``---`` lines, or None; the rest of the card)."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return None, text
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1 :])
    return None, text


def _flat(value: Any) -> str:
    """A metadata value as one line of text (lists joined, mappings as ``k: v``)."""
    if isinstance(value, list):
        return ", ".join(_flat(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_flat(v)}" for k, v in value.items())
    return "" if value is None else str(value)


def _is_relative(url: str) -> bool:
    parts = urlsplit(url)
    return not parts.scheme and not parts.netloc and not url.startswith(("/", "#", "?"))


def _rewrite_urls(
    tokens: list[Token], link: Callable[[str], str], image: Callable[[str], str]
) -> None:
    for token in tokens:
        for child in token.children or ():
            if child.type == "link_open":
                href = str(child.attrGet("href") or "")
                if _is_relative(href):
                    child.attrSet("href", link(href))
                child.attrSet("rel", "nofollow noopener noreferrer")
            elif child.type == "image":
                src = str(child.attrGet("src") or "")
                if _is_relative(src):
                    child.attrSet("src", image(src))


def render_card(
    text: str,
    *,
    link: Callable[[str], str] = lambda url: url,
    image: Callable[[str], str] = lambda url: url,
) -> Card:
    """Render ``text`` (a README.md); ``link``/``image`` map a relative URL into the repo.

    Args:
        text: the card as stored.
        link: the page for a relative link target (a file view at the shown revision).
        image: the download URL for a relative image (its bytes at the shown revision).
    """
    front, body = split_front_matter(text)
    metadata: dict[str, str] = {}
    bad: str | None = None
    if front is not None:
        try:
            data = yaml.safe_load(front)
        except yaml.YAMLError:
            data = front
        if isinstance(data, dict):
            metadata = {str(k): _flat(v) for k, v in data.items()}
        elif data is not None:
            bad = front
    tokens = MARKDOWN.parse(body)
    _rewrite_urls(tokens, link, image)
    return Card(
        html=MARKDOWN.renderer.render(tokens, MARKDOWN.options, {}),
        metadata=metadata,
        bad_metadata=bad,
    )
