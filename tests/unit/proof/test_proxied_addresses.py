"""The addresses a proof instance is given: every database host of an HA URL through a proxy
of its own, in the URL's order, the credentials and options kept."""

from __future__ import annotations

from tests.proof.instances import hosts_of, through

HA = (
    "postgresql://fulfillment:secret@127.0.0.1:5434,127.0.0.1:5435/proof"
    "?sslmode=disable&target_session_attrs=read-write"
)


def test_every_host_of_a_multi_host_url_is_found_in_its_order() -> None:
    assert hosts_of(HA) == [("127.0.0.1", 5434), ("127.0.0.1", 5435)]
    assert hosts_of("postgresql://u:p@db.internal/x") == [("db.internal", 5432)]


def test_the_proxied_url_names_each_proxy_instead_of_its_host_and_keeps_the_rest() -> None:
    assert through(HA, [41000, 41001]) == (
        "postgresql://fulfillment:secret@127.0.0.1:41000,127.0.0.1:41001/proof"
        "?sslmode=disable&target_session_attrs=read-write"
    )
