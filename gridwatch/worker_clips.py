"""The worker's event clips, wired for `gridwatch ingest`: the on-disk spool, the recorder that cuts clips
from the pre-roll ring, the uploader that hands them to the center, and the listener of on-demand requests.

`clip_side` starts them and stops them on the way out, in this order: requests (no new clip is asked for),
the recorder (it cuts and spools what it was recording), the uploader (what it did not send stays spooled for
the next run), the spool. With `GRIDWATCH_CENTER_URL` empty, clips are spooled but not uploaded (one log
line says so); the spool's bound then keeps the newest.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

from contracts import AlertSink
from gridwatch.settings import MIB, GridwatchSettings

if TYPE_CHECKING:
    import redis
    from prometheus_client.registry import Collector

    from ingest.clips import ClipRecorder
    from ingest.config import ClipConfig

log = logging.getLogger("gridwatch")


@contextmanager
def clip_side(
    settings: GridwatchSettings,
    clip_config: ClipConfig,
    worker_id: str,
    publisher: AlertSink,
    client: redis.Redis,
) -> Iterator[tuple[AlertSink, ClipRecorder | None, list[Collector]]]:
    """The worker's event clips: spool, recorder, uploader and on-demand requests, started here and stopped
    on the way out (requests first, then the recorder, which cuts and spools what it was recording, then the
    uploader and the spool); yields the alert sink the detector and the worker publish to. Raises
    `ingest.spool.SpoolInUse` when another worker holds the spool of `worker_id`."""
    if not clip_config.enabled:
        yield publisher, None, []
        return
    from ingest.clip_requests import ClipRequestListener
    from ingest.clips import ClipRecorder
    from ingest.spool import ClipSpool
    from ingest.uploader import ClipCollector, ClipUploader

    spool = ClipSpool(settings.data_dir / "clips" / worker_id, max_bytes=int(settings.clip_spool_mb * MIB))
    with ExitStack() as stack:
        stack.callback(spool.close)
        uploader = None
        if settings.center_url:
            uploader = ClipUploader(spool, settings.center_url, settings.worker_token)
            if not settings.worker_token.get_secret_value():
                log.warning("no worker token (GRIDWATCH_WORKER_TOKEN): the center will refuse the clips")
            uploader.start()
            stack.callback(uploader.stop)
        else:
            log.warning(
                "no center URL configured (GRIDWATCH_CENTER_URL): clips are kept in %s but not uploaded",
                spool.directory,
            )
        recorder = ClipRecorder(clip_config, spool, worker_id)
        stack.callback(recorder.close)
        listener = ClipRequestListener(client, recorder.save_last)
        listener.start()
        stack.callback(listener.stop)
        yield recorder.alert_sink(publisher), recorder, [ClipCollector(spool, uploader, worker_id, listener)]
