"""Request and response models of the live-view API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LiveOffer(BaseModel):
    """A browser's WebRTC offer (what `RTCPeerConnection.createOffer()` gives)."""

    model_config = ConfigDict(extra="forbid")

    sdp: str = Field(min_length=10, max_length=100_000, description="SDP offer")
    type: Literal["offer"] = "offer"


class LiveAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sdp: str = Field(description="SDP answer")
    type: Literal["answer"] = "answer"
    session_id: str = Field(description="Hang up with DELETE .../live/{session_id}")
    codec: Literal["h264", "vp8"] = Field(description="h264: passed through from the camera; vp8: re-encoded")


class LivePullPublic(BaseModel):
    """One camera the server is pulling for live view."""

    camera_id: str
    viewers: int = Field(ge=0)
    source_codec: str | None = None
    packets: int = Field(ge=0, description="Packets read from the camera so far")
