"""Camera credentials apart from the URL: every URL form cameras use is split into the URL without them and
the credentials, joined again only to open a stream, and no credential comes back from the camera endpoints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from pydantic import ValidationError

from contracts import Camera, join_credentials, redact_url, split_credentials
from tests.center_api.conftest import (  # noqa: F401 - fixtures are found by name
    NANGUAN_1,
    auth,
    center_factory,
    database_url,
    redis_db,
)


@dataclass(frozen=True)
class Form:
    url: str  # as an integrator writes it
    clean: str  # Camera.url: no credential left
    username: str | None
    password: str | None
    params: tuple[tuple[str, str], ...]  # as written in the URL
    opened: str  # what an opener hands to FFmpeg

    @property
    def secrets(self) -> list[str]:
        """Distinctive values that must never come back (user names here are distinctive too)."""
        return [v for v in (self.username, self.password) if v] + [v for _, v in self.params]


FORMS = {
    "userinfo": Form(
        "rtsp://admin7:Hunter2x@10.0.0.9:554/Streaming/Channels/101",
        "rtsp://10.0.0.9:554/Streaming/Channels/101",
        "admin7",
        "Hunter2x",
        (),
        "rtsp://admin7:Hunter2x@10.0.0.9:554/Streaming/Channels/101",
    ),
    "raw-hash-slash-question": Form(
        "rtsp://admin7:Hu#nt/er?2x@10.0.0.9/live",
        "rtsp://10.0.0.9/live",
        "admin7",
        "Hu#nt/er?2x",
        (),
        "rtsp://admin7:Hu%23nt%2Fer%3F2x@10.0.0.9/live",
    ),
    "raw-at": Form(
        "rtsp://admin7:Hunt@er2x@10.0.0.9/live",
        "rtsp://10.0.0.9/live",
        "admin7",
        "Hunt@er2x",
        (),
        "rtsp://admin7:Hunt%40er2x@10.0.0.9/live",
    ),
    "percent-encoded": Form(
        "rtsp://admin7:Hunt%40er%2F2x%23@10.0.0.9/live",
        "rtsp://10.0.0.9/live",
        "admin7",
        "Hunt@er/2x#",
        (),
        "rtsp://admin7:Hunt%40er%2F2x%23@10.0.0.9/live",
    ),
    "encoded-user": Form(
        "rtsp://ad%3Amin7:Hunter2x@cam.local/x",
        "rtsp://cam.local/x",
        "ad:min7",
        "Hunter2x",
        (),
        "rtsp://ad%3Amin7:Hunter2x@cam.local/x",
    ),
    "user-only": Form(
        "rtsp://viewer7@10.0.0.9/live",
        "rtsp://10.0.0.9/live",
        "viewer7",
        None,
        (),
        "rtsp://viewer7@10.0.0.9/live",
    ),
    "dahua-query": Form(
        "rtsp://10.0.0.9:554/cam/realmonitor?channel=1&subtype=0&user=admin7&password=Hunter2x",
        "rtsp://10.0.0.9:554/cam/realmonitor?channel=1&subtype=0&user=&password=",
        None,
        None,
        (("user", "admin7"), ("password", "Hunter2x")),
        "rtsp://10.0.0.9:554/cam/realmonitor?channel=1&subtype=0&user=admin7&password=Hunter2x",
    ),
    "http-pwd-encoded": Form(
        "http://10.0.0.9/video.cgi?resolution=640x480&usr=root7&pwd=Hunt%26er%3D2x",
        "http://10.0.0.9/video.cgi?resolution=640x480&usr=&pwd=",
        None,
        None,
        (("usr", "root7"), ("pwd", "Hunt%26er%3D2x")),
        "http://10.0.0.9/video.cgi?resolution=640x480&usr=root7&pwd=Hunt%26er%3D2x",
    ),
    "passwd-username-mixed-case": Form(
        "rtsp://10.0.0.9/live?UserName=admin7&PassWd=Hunter2x&fps=5",
        "rtsp://10.0.0.9/live?UserName=&PassWd=&fps=5",
        None,
        None,
        (("UserName", "admin7"), ("PassWd", "Hunter2x")),
        "rtsp://10.0.0.9/live?UserName=admin7&PassWd=Hunter2x&fps=5",
    ),
    "token": Form(
        "rtsp://10.0.0.9/media/video1?token=T0kenHunter2x",
        "rtsp://10.0.0.9/media/video1?token=",
        None,
        None,
        (("token", "T0kenHunter2x"),),
        "rtsp://10.0.0.9/media/video1?token=T0kenHunter2x",
    ),
    "semicolon-params": Form(
        "rtsp://10.0.0.9/axis-media/media.amp;user=root7;password=Hunter2x",
        "rtsp://10.0.0.9/axis-media/media.amp;user=;password=",
        None,
        None,
        (("user", "root7"), ("password", "Hunter2x")),
        "rtsp://10.0.0.9/axis-media/media.amp;user=root7;password=Hunter2x",
    ),
    "path-params": Form(
        "rtsp://10.0.0.9:554/user=admin7&password=Hunter2x&channel=1&stream=0.sdp",
        "rtsp://10.0.0.9:554/user=&password=&channel=1&stream=0.sdp",
        None,
        None,
        (("user", "admin7"), ("password", "Hunter2x")),
        "rtsp://10.0.0.9:554/user=admin7&password=Hunter2x&channel=1&stream=0.sdp",
    ),
    "userinfo-and-token-ipv6": Form(
        "rtsps://admin7:Hunter2x@[fe80::1]:322/live?token=T0kenHunter2x#f",
        "rtsps://[fe80::1]:322/live?token=#f",
        "admin7",
        "Hunter2x",
        (("token", "T0kenHunter2x"),),
        "rtsps://admin7:Hunter2x@[fe80::1]:322/live?token=T0kenHunter2x#f",
    ),
    "none": Form(
        "rtsp://10.0.0.9/live?channel=1",
        "rtsp://10.0.0.9/live?channel=1",
        None,
        None,
        (),
        "rtsp://10.0.0.9/live?channel=1",
    ),
    "empty-password-param": Form(
        "rtsp://10.0.0.9/live?user=admin7&password=",
        "rtsp://10.0.0.9/live?user=&password=",
        None,
        None,
        (("user", "admin7"),),
        "rtsp://10.0.0.9/live?user=admin7&password=",
    ),
    "file": Form("/data/clip.mp4", "/data/clip.mp4", None, None, (), "/data/clip.mp4"),
}


def every_form_of(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote(secret)}


@pytest.mark.parametrize("form", FORMS.values(), ids=list(FORMS))
def test_split_takes_every_credential_out_and_join_puts_them_back(form: Form) -> None:
    clean, found = split_credentials(form.url)
    assert (clean, found.username, found.password, found.params) == (
        form.clean,
        form.username,
        form.password,
        form.params,
    )
    for secret in form.secrets:
        assert not any(shown in clean for shown in every_form_of(secret)), secret
        assert secret not in repr(found)
    opened = join_credentials(clean, found.username, found.password, dict(found.params))
    assert opened == form.opened
    assert split_credentials(opened) == (clean, found)  # what is opened splits to the same again


@pytest.mark.parametrize("form", FORMS.values(), ids=list(FORMS))
def test_a_camera_keeps_the_credentials_apart_and_opens_the_joined_url(form: Form) -> None:
    cam = Camera(id="c1", url=form.url)
    assert cam.url == form.clean and cam.stream_url() == form.opened
    assert bool(cam.credentials) == bool(form.secrets or form.username)
    shown = repr(cam) + str(cam) + cam.redacted_url + json.dumps(cam.model_dump(mode="python"), default=str)
    for secret in form.secrets:
        assert secret not in shown, secret
    # the wire (registry rows, gw:cameras) carries them: a worker opens the same URL
    assert Camera.model_validate_json(cam.model_dump_json()).stream_url() == form.opened
    assert cam.redacted_url == redact_url(form.opened)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        # the URL's userinfo replaces user and password; the given parameters stay
        (
            {"url": "rtsp://new7:Pw2@h/x", "credentials": {"username": "old", "params": {"token": "t"}}},
            "rtsp://new7:Pw2@h/x?token=t",
        ),
        # the URL's parameters replace those of the same name
        (
            {"url": "rtsp://h/x?token=New", "credentials": {"params": {"token": "Old"}}},
            "rtsp://h/x?token=New",
        ),
        # no credential in the URL: the given ones hold, a parameter goes where its name is, else appended
        (
            {"url": "rtsp://h/x?user=&ch=1", "credentials": {"params": {"user": "u7", "password": "p%2F7"}}},
            "rtsp://h/x?user=u7&ch=1&password=p%2F7",
        ),
        (
            {"url": "rtsp://h/x", "credentials": {"username": "u 7", "password": "p:/@#?7"}},
            "rtsp://u%207:p%3A%2F%40%23%3F7@h/x",
        ),
    ],
)
def test_credentials_given_apart_and_in_the_url_merge(given: dict, expected: str) -> None:
    assert Camera.model_validate({"id": "c1", **given}).stream_url() == expected


@pytest.mark.parametrize(
    "body",
    [
        {"url": "rtsp://admin7:Hunter2x@h/x"},  # no id: pydantic's error echoes the whole input
        {"id": "c 1", "url": "rtsp://h/x?password=Hunter2x"},
        {
            "id": "c1",
            "url": "rtsp://admin7:Hunter2x@h/x",
            "credentials": {"params": {"bad=name": "Hunter2x"}},
        },
        {
            "id": "c1",
            "url": "rtsp://h/x",
            "credentials": {"username": "admin7", "password": "Hunter2x", "x": 1},
        },
        {"id": "c1", "url": "rtsp://admin7:Hunter2x@h/x", "sample_fps": -1},
    ],
)
def test_a_validation_error_never_echoes_a_credential(body: dict) -> None:
    with pytest.raises(ValidationError) as err:
        Camera.model_validate(body)
    text = err.value.json() + str(err.value) + repr(err.value.errors())
    assert "Hunter2x" not in text and "admin7" not in text


@pytest.mark.parametrize(
    "field", [{"name": "a\x00b"}, {"url": "rtsp://h/x\n"}, {"site_id": "s\x1b"}, {"cell_id": "c\x00"}]
)
def test_control_characters_are_refused(field: dict) -> None:
    with pytest.raises(ValidationError, match="control characters"):
        Camera.model_validate({"id": "c1", "url": "rtsp://h/x", **field})


# -- the camera endpoints: no credential in any answer -------------------------------------------------------

INT = auth("integrator", None, "vendor")
POINT = {"lat": NANGUAN_1[0], "lon": NANGUAN_1[1]}


def assert_clean(text: str, form: Form, where: str) -> None:
    for secret in form.secrets:
        for shown in every_form_of(secret):
            assert shown not in text, f"{shown!r} of {form.url!r} came back from {where}: {text[:300]}"


@pytest.mark.integration
async def test_no_camera_endpoint_answers_with_a_credential(
    center_factory,  # noqa: F811 - the fixtures imported above
    database_url: str,  # noqa: F811
    redis_db,  # noqa: F811
) -> None:
    center = await center_factory(database_url)
    c = center.client
    forms = {k: f for k, f in FORMS.items() if f.secrets}
    for i, (case, form) in enumerate(forms.items()):
        cid = f"cred-{i}"
        created = await c.post(
            "/api/v1/cameras", json={"id": cid, "url": form.url, "location": POINT}, headers=INT
        )
        assert created.status_code == 201, created.text
        assert created.json()["url"] == form.clean
        creds = created.json()["credentials"]
        assert creds["username"] == (form.username is not None)
        assert creds["params"] == sorted(k for k, _ in form.params)
        put = await c.put(
            f"/api/v1/cameras/{cid}", json={"id": cid, "url": form.url, "name": case}, headers=INT
        )
        patched = await c.patch(
            f"/api/v1/cameras/{cid}", json={"url": form.url, "location": POINT}, headers=INT
        )
        one = await c.get(f"/api/v1/cameras/{cid}", headers=INT)
        # a refused body does not echo it either (FastAPI's 422 array carries the input)
        refused = await c.post("/api/v1/cameras", json={"url": form.url, "sample_fps": 0}, headers=INT)
        refused_patch = await c.patch(f"/api/v1/cameras/{cid}", json={"url": form.url, "id_": 1}, headers=INT)
        assert (put.status_code, patched.status_code, one.status_code) == (200, 200, 200)
        assert (refused.status_code, refused_patch.status_code) == (422, 422)
        for name, answer in [
            ("POST", created),
            ("PUT", put),
            ("PATCH", patched),
            ("GET", one),
            ("a refused POST", refused),
            ("a refused PATCH", refused_patch),
        ]:
            assert_clean(answer.text, form, f"{name} {case}")
        # the workers do get them
        wire = Camera.model_validate_json(redis_db.hget("gw:cameras", cid))
        assert wire.stream_url() == form.opened, case
    listing = await c.get("/api/v1/cameras", params={"limit": 1000}, headers=INT)
    csv = "id,url\n" + "".join(f"imp-{i},{f.url}\n" for i, f in enumerate(forms.values()) if "," not in f.url)
    imported = await c.post(
        "/api/v1/cameras/import", content=csv, headers={**INT, "Content-Type": "text/csv"}
    )
    assert imported.status_code == 200 and imported.json()["errors"] == [], imported.text
    listing_after = await c.get("/api/v1/cameras", params={"limit": 1000}, headers=INT)
    for form in forms.values():
        for answer in (listing, imported, listing_after):
            assert_clean(answer.text, form, "the listing or the import")
    assert json.loads(redis_db.hget("gw:cameras", "imp-0"))["credentials"]["password"] == "Hunter2x"


@pytest.mark.integration
async def test_patch_keeps_replaces_or_clears_the_credentials(
    center_factory,  # noqa: F811 - the fixtures imported above
    database_url: str,  # noqa: F811
    redis_db,  # noqa: F811
) -> None:
    center = await center_factory(database_url)
    c = center.client
    path = "/api/v1/cameras/p1"
    body = {"id": "p1", "url": "rtsp://admin7:Hunter2x@10.0.0.1/a", "location": POINT}
    assert (await c.post("/api/v1/cameras", json=body, headers=INT)).status_code == 201

    def opened() -> str:
        return Camera.model_validate_json(redis_db.hget("gw:cameras", "p1")).stream_url()

    steps: list[tuple[dict, str]] = [
        ({"url": "rtsp://10.0.0.2/b"}, "rtsp://admin7:Hunter2x@10.0.0.2/b"),  # a new address, same login
        ({"url": "rtsp://other7:Pw2@10.0.0.2/b"}, "rtsp://other7:Pw2@10.0.0.2/b"),  # a new login
        ({"credentials": {"params": {"token": "T7"}}}, "rtsp://10.0.0.2/b?token=T7"),  # replaced whole
        ({"credentials": None}, "rtsp://10.0.0.2/b"),  # cleared
    ]
    for changes, expected in steps:
        r = await c.patch(path, json=changes, headers=INT)
        assert r.status_code == 200, r.text
        assert opened() == expected, changes
        assert "Hunter2x" not in r.text and "Pw2" not in r.text
