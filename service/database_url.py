"""What the service accepts as `FULFILLMENT_DATABASE_URL`: a libpq-style URL as asyncpg reads it.

Checked when the settings load, so a mistake ends in one line naming the variable instead of
asyncpg's error at the first connection. Messages never include the URL's password.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

SCHEMES = ("postgresql", "postgres")
# asyncpg's SSLMode, weakest first.
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def check_database_url(url: str) -> None:
    """Raises ValueError naming what is wrong; the message never contains the password."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is no number
    except ValueError:
        raise ValueError(
            "not a URL: expected postgresql://user:password@host:port/database"
        ) from None
    scheme = parts.scheme.lower()
    if scheme.startswith(("postgresql+", "postgres+")):
        raise ValueError(
            f"the scheme is {parts.scheme}://, but a driver suffix is SQLAlchemy's convention: "
            "write postgresql:// (asyncpg is the driver)"
        )
    if scheme not in SCHEMES:
        raise ValueError(f"the scheme must be postgresql://, not {parts.scheme or 'missing'}")
    query = dict(parse_qsl(parts.query))
    sslmode = query.get("sslmode")
    if sslmode is not None and sslmode not in SSLMODES:
        raise ValueError(f"sslmode={sslmode} is not one of {', '.join(SSLMODES)}")


def address_of(url: str) -> str:
    """`host:port/database` of `url`, for messages: no user, no password, no parameters."""
    try:
        parts = urlsplit(url)
        port = parts.port or 5432
    except ValueError:
        return "(an unparsable URL)"
    host = parts.hostname or "localhost"
    return f"{host}:{port}{parts.path}"


def sslrootcert_of(url: str) -> str | None:
    return dict(parse_qsl(urlsplit(url).query)).get("sslrootcert")
