"""Event clips at the center: stored content-addressed, linked to incidents, served with HTTP Range.

    files       `ClipStore`: the MP4 files under `<data_dir>/clips/ab/<sha256>.mp4`, received as a stream
    intake      `ClipIntake`: an upload checked, hashed, fitted into its station's quota and filed; a
                worker's failure report
    signing     the short-lived signed URLs a `<video>` element plays (it cannot send a bearer token)
    requests    an operator's "save the last N seconds", to the worker that owns the camera
    schemas     the request and response models of the clip routes (`center_api.api.clips`)

The tables are `center_api.store.clips`; an incident's clip state is `center_api.store.clipstate`.
"""
