"""Keeping secrets out of what people read, by parsing, never by pattern.

A URL is read as libpq and asyncpg read it: `scheme://[userinfo@]hosts[/path][?query][#fragment]`,
the authority ending at the first `/`, `?` or `#`. It is shown with its password replaced by
`***` (the userinfo after its first `:`, and the `password=` and `sslpassword=` parameters), or
not at all when it cannot be read one way only: an unencoded `/`, `?` or `#` in a password moves
the password's end (and the `@`) past the authority, a second `@` is read differently by
asyncpg (the first) and by urllib (the last). A message then says what is wrong, not the value.

Free text (a library's message) is shown with each known secret taken out and every URL in it
masked the same way, or replaced by `HIDDEN`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, unquote_plus

MASK = "***"
HIDDEN = "(a URL not shown)"
# Query parameters whose value is a secret (libpq's and asyncpg's names).
SECRET_PARAMETERS = frozenset({"password", "sslpassword"})
MIN_FRAGMENT = 4
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.")
ENCODE = "a '/', '?' or '#' in the password must be percent-encoded (%2F, %3F, %23)"


class Unreadable(ValueError):
    """A URL that cannot be read one way only; the message says why, never the value."""


@dataclass(frozen=True, slots=True)
class Url:
    """A URL's parts, as written (nothing decoded)."""

    scheme: str
    userinfo: str | None
    hosts: str
    rest: str  # path, query and fragment, from the first `/`, `?` or `#` on

    @property
    def user(self) -> str | None:
        return None if self.userinfo is None else self.userinfo.partition(":")[0]

    @property
    def password(self) -> str | None:
        if self.userinfo is None or ":" not in self.userinfo:
            return None
        return self.userinfo.partition(":")[2]

    def masked(self) -> str:
        userinfo = ""
        if self.userinfo is not None:
            userinfo = (self.user or "") + (f":{MASK}" if self.password is not None else "") + "@"
        path, mark, query = self.rest.partition("?")
        return f"{self.scheme}://{userinfo}{self.hosts}{path}{mark}{_masked_query(query)}"


def parse_url(url: str) -> Url:
    """`url` in parts, or Unreadable saying why it cannot be read one way only."""
    scheme, separator, after = url.partition("://")
    if not separator or not scheme or not scheme[0].isalpha() or set(scheme) - _SCHEME_CHARS:
        raise Unreadable("not a URL: expected postgresql://user:password@host:port/database")
    if any(unicodedata.category(c) == "Cc" for c in url):
        raise Unreadable("a control character in the URL (a tab, a line break?)")
    end = min((i for i in (after.find(c) for c in "/?#") if i >= 0), default=len(after))
    authority, rest = after[:end], after[end:]
    if "@" in rest:
        raise Unreadable(f"an '@' after the host: {ENCODE}, an '@' anywhere as %40")
    userinfo, at, hosts = authority.rpartition("@")
    if at and "@" in userinfo:
        raise Unreadable(
            "more than one '@' before the host: an '@' in the user or password must be "
            "percent-encoded (%40)"
        )
    for host in hosts.split(","):
        _check_host(host)
    return Url(scheme, userinfo if at else None, hosts, rest)


def unreadable(url: str) -> str | None:
    """Why `url` cannot be shown with its password masked, or None when it can."""
    try:
        parse_url(url)
    except Unreadable as why:
        return str(why)
    return None


def mask_url(url: str) -> str | None:
    """`url` with its passwords replaced by `***`, or None when it cannot be read one way
    only (then nothing of it may be shown)."""
    try:
        return parse_url(url).masked()
    except Unreadable:
        return None


def secrets_of_url(url: str) -> list[str]:
    """The passwords in `url`, as written and as decoded: what must not be shown."""
    try:
        parts = parse_url(url)
    except Unreadable:
        # Whatever follows the scheme's `//` may hold one: it is never shown either way.
        after = url.partition("://")[2]
        return [after] if after else []
    found = [] if parts.password is None else [parts.password, unquote(parts.password)]
    pieces = parts.rest.partition("?")[2].split("&")
    for i, piece in enumerate(pieces):
        name, _, value = piece.partition("=")
        if _is_secret(name):
            # As asyncpg reads it, and to the end: with an unencoded `&` in it, its end reads
            # as more parameters, which asyncpg sends the server, which may name them in an
            # error (those of a few characters would take too much out of a message).
            tail = "&".join(pieces[i:]).partition("=")[2]
            found += [value, unquote_plus(value), tail]
            for after in pieces[i + 1 :]:
                name, _, value = after.partition("=")
                bits = [after, name, value, unquote_plus(name), unquote_plus(value)]
                found += [b for b in bits if len(b) >= MIN_FRAGMENT]
            break
    return [s for s in dict.fromkeys(found) if s]


def secrets_of(url: str, others: Iterable[str] = ()) -> list[str]:
    """The secrets of a configuration: those of its database `url` and `others`. One that is
    a public part of the URL too (a password that is the user's name) cannot be told from it
    and is left."""
    public = mask_url(url) or ""
    return [s for s in dict.fromkeys([*secrets_of_url(url), *others]) if s and s not in public]


def mask_urls_in(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with each of `secrets` replaced by `***` and every URL in it (from a scheme's
    `://` to the next white space) masked, or replaced by HIDDEN when it cannot be read."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    words = text.split(" ")
    for i, word in enumerate(words):
        if "://" in word:
            words[i] = _masked_word(word)
    return " ".join(words)


def _masked_word(word: str) -> str:
    at = word.index("://")
    start = at
    while start > 0 and word[start - 1] in _SCHEME_CHARS:
        start -= 1
    head, url = word[:start], word[start:]
    # Punctuation of the sentence the URL sits in, not part of it.
    core = url.rstrip(".,;:)'\"")
    return head + (mask_url(core) or HIDDEN) + url[len(core) :]


def _masked_query(query: str) -> str:
    """`query` (and the fragment after it) as written up to its first secret parameter, that
    one as `name=***`, and anything after it as `***`: an unencoded `&` or `#` in the secret
    would make its end look like more parameters or a fragment."""
    shown: list[str] = []
    for piece in query.split("&"):
        name, equals, _ = piece.partition("=")
        if equals and _is_secret(name.partition("#")[0]):
            rest = query[len("&".join([*shown, piece])) :]
            return "&".join([*shown, f"{name}={MASK}"]) + (f"&{MASK}" if rest else "")
        shown.append(piece)
    return query


def _is_secret(name: str) -> bool:
    return unquote_plus(name).strip().lower() in SECRET_PARAMETERS


def _check_host(host: str) -> None:
    if host.startswith("["):
        _, bracket, port = host[1:].partition("]")
        if not bracket or (port and not port.startswith(":")):
            raise Unreadable("a host in brackets ([IPv6]) is not closed by ']'")
        port = port[1:]
    else:
        port = host.rpartition(":")[2] if ":" in host else ""
    if port and not (port.isascii() and port.isdigit()):
        raise Unreadable(
            "a port is not a number (if what follows a ':' is a password, user:password ends "
            f"with '@'; {ENCODE})"
        )
