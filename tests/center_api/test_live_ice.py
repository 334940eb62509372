"""The live view calls nothing out: no ICE server unless one is configured (a police LAN has no internet)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from center_api.live.relay import peer_configuration
from center_api.live.settings import IceServer, LiveSettings
from gridwatch.cli import _center_settings
from gridwatch.settings import GridwatchSettings


def test_default_peer_configuration_has_no_ice_server() -> None:
    # An explicit empty list: aiortc's own default (iceServers None) is a public STUN server.
    assert peer_configuration(LiveSettings()).iceServers == []


def test_configured_turn_server_reaches_the_peer_connection() -> None:
    settings = LiveSettings(
        ice_servers=[IceServer(urls=["turn:10.1.2.3:3478"], username="gw", credential="s3cret")]  # type: ignore[arg-type]
    )
    (server,) = peer_configuration(settings).iceServers or []
    assert (server.urls, server.username, server.credential) == (["turn:10.1.2.3:3478"], "gw", "s3cret")
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize("url", ["http://10.1.2.3", "10.1.2.3:3478", ""])
def test_an_ice_url_must_be_stun_or_turn(url: str) -> None:
    with pytest.raises(ValidationError, match="ICE server URL"):
        IceServer(urls=[url])


def test_the_environment_configures_ice_servers(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("GRIDWATCH_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("GRIDWATCH_ICE_SERVERS", raising=False)
    assert _center_settings(GridwatchSettings()).live.ice_servers == []
    monkeypatch.setenv("GRIDWATCH_ICE_SERVERS", "stun:10.0.0.9:3478, turn:10.0.0.9:3478")
    monkeypatch.setenv("GRIDWATCH_ICE_USERNAME", "gw")
    (server,) = _center_settings(GridwatchSettings()).live.ice_servers
    assert server.urls == ["stun:10.0.0.9:3478", "turn:10.0.0.9:3478"] and server.username == "gw"
