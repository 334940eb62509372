// The incident's event clips in the panel: a native <video> of the clip (a selector when the incident folded
// several alerts that each brought one), a timeline that marks where each alert fired and seeks there, and a
// download link. While the clip is pending or unavailable the snapshot stays, with a line that says why.
//
// The clip list comes from the incident's `clips_url`; each clip's `url` is a short-lived signed URL that the
// <video> loads directly (HTTP Range), so when it expires the element errors and the list is fetched again.

import { api } from "./api.js";
import { $, el, fmtTime } from "./util.js";

// Fresh signed URLs tried within RECOVERY_WINDOW_MS before the player gives up and says so (an expired URL
// needs one; a file the browser fails on would otherwise be fetched again and again).
const MAX_RECOVERIES = 2;
const RECOVERY_WINDOW_MS = 30000;
const SEEK_STEP_S = 1;

// The MIME type the browser is asked about for a clip's codec (a High-profile H.264 or Main HEVC stream).
const CODEC_TYPES = {
  h264: { type: 'video/mp4; codecs="avc1.640028"', label: "H.264" },
  avc1: { type: 'video/mp4; codecs="avc1.640028"', label: "H.264" },
  hevc: { type: 'video/mp4; codecs="hvc1.1.6.L120.90"', label: "H.265" },
  h265: { type: 'video/mp4; codecs="hvc1.1.6.L120.90"', label: "H.265" },
  hvc1: { type: 'video/mp4; codecs="hvc1.1.6.L120.90"', label: "H.265" },
  hev1: { type: 'video/mp4; codecs="hvc1.1.6.L120.90"', label: "H.265" },
};

export function codecInfo(codec) {
  const known = CODEC_TYPES[(codec || "").toLowerCase()];
  return known || { type: "video/mp4", label: codec || "unknown codec" };
}

function seconds(value) {
  const whole = Math.floor(value);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}.${Math.floor((value - whole) * 10)}`;
}

function size(bytes) {
  if (!Number.isFinite(bytes)) return "";
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1024))} KB`;
}

export class ClipView {
  constructor() {
    this.video = $("p-video");
    this.incidentId = null;
    this.key = null; // what the shown list was fetched for: a changed incident fetches it again
    this.clips = [];
    this.clip = null; // the clip in the player
    this.generation = 0; // answers of superseded fetches are dropped
    this.recoveries = []; // when the last fresh URLs were fetched (ms)
    this.resumeAt = null;
    this.url = null; // the clip list's URL
    this.onRefresh = () => {};
    this.video.addEventListener("error", () => this.recover());
    this.video.addEventListener("loadedmetadata", () => this.resume());
    this.video.addEventListener("playing", () => this.message(""));
    this.video.addEventListener("timeupdate", () => this.playhead());
    this.video.addEventListener("seeked", () => this.playhead());
    $("p-clip-pick").addEventListener("change", (event) => {
      const clip = this.clips.find((c) => String(c.id) === event.target.value);
      if (clip) this.play(clip);
    });
    $("p-clip-retry").addEventListener("click", () => this.onRefresh());
    const bar = $("p-timeline");
    bar.addEventListener("click", (event) => {
      if (event.target.closest(".mark")) return;
      const box = bar.getBoundingClientRect();
      if (box.width > 0 && this.clip) this.seek(((event.clientX - box.left) / box.width) * this.duration());
    });
    bar.addEventListener("keydown", (event) => this.onKey(event));
  }

  // The incident changed or was selected: show its clip state (fetch the list when it may have changed).
  show(incident, { onRefresh } = {}) {
    if (onRefresh) this.onRefresh = onRefresh;
    if (incident.id !== this.incidentId) {
      this.reset();
      this.incidentId = incident.id;
    }
    const state = incident.clip_state || null;
    $("p-clip").hidden = state === null;
    $("p-clip").dataset.state = state || "";
    if (state !== "present") {
      this.generation += 1; // a list still on its way is of no use now
      this.unload();
      this.clips = [];
      this.key = null;
      $("p-clip-retry").hidden = state !== "pending";
      if (state === "pending") this.message("Clip pending: the worker is recording/uploading it; it appears here when it arrives.");
      else if (state === "unavailable") this.message(`No clip: ${incident.clip_reason || "the worker could not record one"}.`);
      else this.message("");
      return;
    }
    $("p-clip-retry").hidden = true;
    const key = [incident.id, incident.clips_url, incident.last_seen, incident.count, incident.updated_at,
      incident.clip_count].join("|");
    if (key === this.key) return;
    this.key = key;
    this.fetch(incident.clips_url || `/api/v1/incidents/${incident.id}/clips`);
  }

  // Something about the clips changed that the incident's fields may not show (a second clip arrived).
  invalidate() {
    this.key = null;
  }

  reset() {
    this.generation += 1;
    this.unload();
    this.clips = [];
    this.key = null;
    this.incidentId = null;
    this.message("");
    $("p-clip").hidden = true;
  }

  async fetch(url, { resumeAt = null } = {}) {
    const generation = ++this.generation;
    const id = this.incidentId;
    this.url = url;
    let list;
    try {
      list = await api(url);
    } catch (err) {
      if (generation !== this.generation || id !== this.incidentId) return;
      this.key = null; // the next update of the incident tries again
      this.message(`Could not load the clip list: ${err.message}`, true);
      return;
    }
    if (generation !== this.generation || id !== this.incidentId) return;
    this.clips = [...(Array.isArray(list) ? list : list.items || [])]
      .sort((a, b) => String(a.started_at).localeCompare(String(b.started_at)));
    this.picker();
    if (!this.clips.length) {
      this.unload();
      this.message("The clip list is empty.");
      return;
    }
    const same = this.clip && this.clips.find((c) => c.id === this.clip.id);
    if (same && resumeAt === null) {
      this.clip = same; // fresher signed URLs for the next load; the player keeps its position
      this.details(same);
      return;
    }
    this.play(same || this.clips[0], { at: same ? resumeAt || 0 : 0 });
  }

  picker() {
    const pick = $("p-clip-pick");
    pick.hidden = this.clips.length < 2;
    pick.replaceChildren(...this.clips.map((c, i) => el("option", { value: c.id },
      `Clip ${i + 1} of ${this.clips.length} · ${fmtTime(c.started_at)} · ${Number(c.duration_s).toFixed(0)} s`)));
    if (this.clip) pick.value = String(this.clip.id);
  }

  play(clip, { at = 0 } = {}) {
    this.clip = clip;
    $("p-clip-pick").value = String(clip.id);
    this.details(clip);
    const codec = codecInfo(clip.codec);
    this.stop();
    if (this.video.canPlayType(codec.type) === "") {
      this.player(false);
      this.message(`This browser cannot play ${codec.label}; download the clip to watch it.`, true);
      $("p-clip").dataset.playable = "no";
      return;
    }
    $("p-clip").dataset.playable = "yes";
    this.message("");
    this.player(true);
    this.resumeAt = at > 0 ? at : null;
    this.video.src = clip.url;
    this.video.load();
  }

  // Download link, alert marks on the timeline and the one-line description of the clip.
  details(clip) {
    $("p-clip-tools").hidden = false;
    const link = $("p-clip-download");
    link.hidden = !clip.download_url;
    if (clip.download_url) link.setAttribute("href", clip.download_url);
    const duration = this.duration(clip);
    const marks = (clip.alert_offsets_s || []).map((offset, i) => {
      const mark = el("button", {
        type: "button", class: "mark", dataset: { offset },
        title: `Alert ${i + 1} at ${seconds(offset)}`, "aria-label": `Seek to alert ${i + 1} at ${seconds(offset)}`,
        onclick: () => { this.seek(offset); this.video.play().catch(() => {}); },
      });
      mark.style.left = `${Math.min(100, Math.max(0, (offset / duration) * 100))}%`;
      return mark;
    });
    $("p-timeline").replaceChildren(el("div", { class: "played", id: "p-played" }), ...marks);
    $("p-timeline").setAttribute("aria-valuemax", duration.toFixed(1));
    const dims = clip.width && clip.height ? `${clip.width}×${clip.height}` : "";
    $("p-clip-info").textContent = [fmtTime(clip.started_at), `${Number(clip.duration_s).toFixed(1)} s`, dims,
      codecInfo(clip.codec).label, size(clip.bytes), clip.short_reason ? `short: ${clip.short_reason}` : ""]
      .filter(Boolean).join(" · ");
    $("p-clip-info").title = clip.short_reason || "";
    this.playhead();
  }

  duration(clip = this.clip) {
    return clip && clip.duration_s > 0 ? clip.duration_s : (Number.isFinite(this.video.duration) ? this.video.duration : 1);
  }

  seek(at) {
    const target = Math.min(Math.max(0, at), this.duration());
    if (this.video.readyState >= HTMLMediaElement.HAVE_METADATA) this.video.currentTime = target;
    else this.resumeAt = target;
  }

  resume() {
    if (this.resumeAt !== null) {
      this.video.currentTime = Math.min(this.resumeAt, this.video.duration || this.resumeAt);
      this.resumeAt = null;
    }
  }

  playhead() {
    const played = $("p-played");
    const fraction = this.clip ? Math.min(1, this.video.currentTime / this.duration()) : 0;
    if (played) played.style.width = `${fraction * 100}%`;
    const bar = $("p-timeline");
    bar.setAttribute("aria-valuenow", this.video.currentTime.toFixed(1));
    bar.setAttribute("aria-valuetext", `${seconds(this.video.currentTime)} of ${seconds(this.duration())}`);
  }

  // The timeline as a slider: arrows step a second, Home/End go to the ends, PageUp/PageDown to the alerts.
  onKey(event) {
    if (!this.clip) return;
    const now = this.video.currentTime;
    const offsets = (this.clip.alert_offsets_s || []).slice().sort((a, b) => a - b);
    const moves = {
      ArrowLeft: () => now - SEEK_STEP_S, ArrowDown: () => now - SEEK_STEP_S,
      ArrowRight: () => now + SEEK_STEP_S, ArrowUp: () => now + SEEK_STEP_S,
      Home: () => 0, End: () => this.duration(),
      PageUp: () => [...offsets].reverse().find((o) => o < now - 0.05) ?? 0,
      PageDown: () => offsets.find((o) => o > now + 0.05) ?? this.duration(),
    };
    const target = moves[event.key];
    if (!target) return;
    event.preventDefault();
    event.stopPropagation();
    this.seek(target());
  }

  // The <video> failed: most often its signed URL expired. Fetch the list again (fresh URLs) and carry on
  // where it was; after MAX_RECOVERIES failures within RECOVERY_WINDOW_MS say so and leave the download link.
  recover() {
    if (!this.clip || !this.video.getAttribute("src")) return;
    const error = this.video.error;
    const now = Date.now();
    this.recoveries = this.recoveries.filter((at) => now - at < RECOVERY_WINDOW_MS);
    if (this.recoveries.length >= MAX_RECOVERIES) {
      this.message(`The clip could not be played (${error?.message || `media error ${error?.code}`}); try the download.`, true);
      return;
    }
    this.recoveries.push(now);
    this.fetch(this.url, { resumeAt: this.video.currentTime || 0 });
  }

  // Pause and let go of the file (its connection too).
  stop() {
    this.resumeAt = null;
    if (this.video.getAttribute("src")) {
      this.video.pause();
      this.video.removeAttribute("src");
      this.video.load();
    }
  }

  // No clip in the panel: the snapshot again, and nothing of the last clip.
  unload() {
    this.stop();
    this.clip = null;
    this.player(false);
    $("p-clip-tools").hidden = true;
    $("p-clip-info").textContent = "";
    delete $("p-clip").dataset.playable;
  }

  // The snapshot stands in for the video while there is none to play.
  player(visible) {
    $("p-snap").hidden = visible;
    $("p-clip-player").hidden = !visible;
  }

  message(text, bad = false) {
    const node = $("p-clip-state");
    node.textContent = text;
    node.classList.toggle("bad", bad);
  }
}
