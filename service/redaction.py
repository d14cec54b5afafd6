"""Keeping passwords out of what people read: a database URL is shown with its password masked,
wherever it appears (a configuration error, a connection error, a log line)."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"

# `scheme://user:password@`: the password is whatever follows the first colon of the userinfo.
_USERINFO_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#@\s]*:)[^@/\s]*(?=@)")


def mask_url(url: str) -> str:
    """`url` with the password of its userinfo and any `password=` query parameter masked.

    Works on text that does not parse as a URL too, so a malformed value is still safe to show.
    """
    masked = _USERINFO_PASSWORD.sub(lambda m: m.group("head") + MASK, url)
    try:
        parts = urlsplit(masked)
    except ValueError:
        return re.sub(r"(?i)(password=)[^&\s]*", r"\g<1>" + MASK, masked)
    if "password" not in parts.query.lower():
        return masked
    query = [
        (name, MASK if name.lower() == "password" else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*/")))


def mask_urls_in(text: str) -> str:
    """`text` with every URL password in it masked (an exception's message, say)."""
    return re.sub(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+", lambda m: mask_url(m.group(0)), text)
