"""The skip-or-fail rule for missing servers (tests/integration/conftest.py)."""

from __future__ import annotations

import socket

import pytest

from tests.integration.conftest import REQUIRE_SERVICES, require_service


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_missing_server_skips_with_the_address(
    closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(REQUIRE_SERVICES, raising=False)
    with pytest.raises(
        pytest.skip.Exception, match=f"Thing not reachable at 127.0.0.1:{closed_port}"
    ):
        require_service("Thing", "127.0.0.1", closed_port)


def test_a_missing_server_fails_when_servers_are_required(
    closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(REQUIRE_SERVICES, "1")
    with pytest.raises(
        pytest.fail.Exception, match=f"Thing not reachable at 127.0.0.1:{closed_port}"
    ):
        require_service("Thing", "127.0.0.1", closed_port)


def test_a_listening_server_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_SERVICES, "1")
    with socket.create_server(("127.0.0.1", 0)) as server:
        require_service("Thing", "127.0.0.1", server.getsockname()[1])
