"""Several processes from one `fulfillment run`: each instance has an HTTP port of its own."""

from __future__ import annotations

from service.bootstrap.supervisor import instance_settings
from service.settings import Settings


def test_each_instance_of_several_processes_serves_http_on_its_own_port() -> None:
    settings = Settings(http_port=8080, processes=3)
    picked = Settings(http_port=0, processes=3)

    assert [instance_settings(settings, i).http_port for i in range(3)] == [8080, 8081, 8082]
    assert [instance_settings(picked, i).http_port for i in range(3)] == [0, 0, 0]
    assert instance_settings(settings, 2).topics == settings.topics
