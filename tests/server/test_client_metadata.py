"""What the edges pass on of a client's metadata (micro.server.client_metadata)."""

from __future__ import annotations

import pytest

from micro.server.client_metadata import (
    from_client,
    grpc_peer_address,
    without_dashboard_cookies,
)


def test_door_keys_and_proxy_credentials_are_dropped_and_the_address_is_the_edges() -> None:
    metadata = {
        "micro-caller-id": "admin",
        "micro-caller-scopes": "admin",
        "micro-callers": "kept: not a door key",
        "proxy-authorization": "Basic eDp5",
        "micro-remote-address": "10.0.0.1:1",
        "authorization": "Bearer t",
        "x-trace": "1",
    }
    assert from_client(metadata, "127.0.0.1:5000") == {
        "micro-callers": "kept: not a door key",
        "micro-remote-address": "127.0.0.1:5000",
        "authorization": "Bearer t",
        "x-trace": "1",
    }
    assert "micro-remote-address" not in from_client({"micro-remote-address": "x:1"}, None)


@pytest.mark.parametrize(
    ("header", "kept"),
    [
        ("a=1; micro-token=t; b=2", "a=1; b=2"),
        ("__Host-micro-token=t;micro-csrf=c", ""),
        (
            "__HOST-Micro-Refresh=r; MICRO-x=1; micro=kept; xmicro-token=kept",
            "micro=kept; xmicro-token=kept",
        ),
        (" ; ;", ""),
    ],
)
def test_the_dashboards_cookies_never_pass(header: str, kept: str) -> None:
    assert without_dashboard_cookies(header) == kept
    metadata = from_client({"cookie": header}, None)
    assert metadata.get("cookie", "") == kept


@pytest.mark.parametrize(
    ("peer", "address"),
    [
        ("ipv4:127.0.0.1:5000", "127.0.0.1:5000"),
        ("ipv6:[::1]:5000", "::1:5000"),
        ("unix:/tmp/s.sock", "unix"),
        ("", None),
    ],
)
def test_peer_address_is_host_port(peer: str, address: str | None) -> None:
    assert grpc_peer_address(peer) == address
