"""What the service accepts as `FULFILLMENT_DATABASE_URL`: a libpq-style URL as asyncpg reads it,
with one host or several (`postgresql://u:p@h1:5432,h2:5432/db?target_session_attrs=read-write`,
the URL of every HA set-up: asyncpg tries the hosts in turn for one that matches).

Checked when the settings load, so a mistake ends in one line naming the variable instead of
asyncpg's error at the first connection. Messages never include the URL's password.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import parse_qsl, urlsplit

SCHEMES = ("postgresql", "postgres")
# asyncpg's SSLMode, weakest first.
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# asyncpg's SessionAttribute (libpq's target_session_attrs).
SESSION_ATTRS = ("any", "primary", "standby", "prefer-standby", "read-write", "read-only")
NOT_A_URL = "not a URL: expected postgresql://user:password@host:port[,host:port...]/database"
_HOST = re.compile(r"(?:\[(?P<ipv6>[^\]]+)\]|(?P<name>[^:\[\]]*))(?::(?P<port>[^:]*))?")


class Host(NamedTuple):
    host: str
    port: int


def hosts_of(url: str) -> list[Host]:
    """The hosts of `url` in order (5432 where no port is given); ValueError when a host or a
    port is malformed. The message never contains the password."""
    parts = urlsplit(url)
    hostlist = parts.netloc.rpartition("@")[2]
    hosts = []
    for spec in hostlist.split(","):
        match = _HOST.fullmatch(spec)
        if match is None:
            raise ValueError(NOT_A_URL)
        port = match["port"]
        if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(NOT_A_URL)
        host = match["ipv6"] or match["name"] or "localhost"
        hosts.append(Host(host, int(port) if port else 5432))
    return hosts


def check_database_url(url: str) -> None:
    """Raises ValueError naming what is wrong; the message never contains the password."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValueError(NOT_A_URL) from None
    scheme = parts.scheme.lower()
    if scheme.startswith(("postgresql+", "postgres+")):
        raise ValueError(
            f"the scheme is {parts.scheme}://, but a driver suffix is SQLAlchemy's convention: "
            "write postgresql:// (asyncpg is the driver)"
        )
    if scheme not in SCHEMES:
        raise ValueError(f"the scheme must be postgresql://, not {parts.scheme or 'missing'}")
    hosts_of(url)
    query = dict(parse_qsl(parts.query))
    sslmode = query.get("sslmode")
    if sslmode is not None and sslmode not in SSLMODES:
        raise ValueError(f"sslmode={sslmode} is not one of {', '.join(SSLMODES)}")
    attrs = query.get("target_session_attrs")
    if attrs is not None and attrs not in SESSION_ATTRS:
        raise ValueError(f"target_session_attrs={attrs} is not one of {', '.join(SESSION_ATTRS)}")


def address_of(url: str) -> str:
    """`host:port[,host:port...]/database` of `url`, for messages: no user, no password, no
    parameters."""
    try:
        hosts = hosts_of(url)
        path = urlsplit(url).path
    except ValueError:
        return "(an unparsable URL)"
    return ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in hosts) + path


def sslrootcert_of(url: str) -> str | None:
    return dict(parse_qsl(urlsplit(url).query)).get("sslrootcert")
