// Live view: one WebRTC session (recvonly video) per open dialog. The server pulls the camera once for all
// viewers; we hang up explicitly when the dialog closes or the page goes away.

import { api, ApiError } from "./api.js";
import { $, el } from "./util.js";

let current = null; // {pc, cameraId, sessionId, timer}
let shown = null; // the camera in the dialog (the save form works without a live picture)
let hooks = { currentIncident: () => null, openIncident: () => {} };
const MAX_SAVE_S = 10; // the center's default pre-roll; a center with less answers 422 and the page says so

function message(text, bad = false) {
  const node = $("live-msg");
  node.textContent = text;
  node.classList.toggle("bad", bad);
}

function gatheringDone(pc, ms) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
    });
  });
}

export async function openLive(camera) {
  hangUp();
  const dialog = $("live");
  const video = $("live-video");
  $("live-title").textContent = `Live — ${camera.name || camera.id}`;
  $("live-codec").textContent = "";
  shown = camera;
  prepareSave(camera);
  video.srcObject = null;
  message("Connecting…");
  if (!dialog.open) dialog.showModal();
  const pc = new RTCPeerConnection({ iceServers: [] });
  const session = { pc, cameraId: camera.id, sessionId: null, timer: null };
  current = session;
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addEventListener("track", (event) => {
    video.srcObject = event.streams[0] || new MediaStream([event.track]);
    video.play().catch(() => {});
  });
  pc.addEventListener("connectionstatechange", () => {
    if (current !== session) return;
    if (pc.connectionState === "failed") message("The live connection failed (network or firewall).", true);
  });
  try {
    await pc.setLocalDescription(await pc.createOffer());
    await gatheringDone(pc, 3000);
    const answer = await api(`/api/v1/cameras/${encodeURIComponent(camera.id)}/live`, {
      method: "POST", body: { sdp: pc.localDescription.sdp, type: "offer" }, timeoutMs: 20000,
    });
    if (current !== session) { pc.close(); return; }
    session.sessionId = answer.session_id;
    $("live-codec").textContent = answer.codec === "h264" ? "H.264 (as sent by the camera)" : "VP8";
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
  } catch (err) {
    if (current !== session) return;
    pc.close();
    if (err instanceof ApiError && err.status === 503) message(err.message.replace(/^camera /, "Camera "), true);
    else if (err instanceof ApiError && err.status === 404) message(`Camera ${camera.id} is not in your station's scope or does not exist.`, true);
    else message(`Live view is not available: ${err.message}`, true);
    current = null;
    return;
  }
  watchPlayback(session, video);
}

// A frozen picture must never look like live video: say so when time stops advancing.
function watchPlayback(session, video) {
  let last = -1, still = 0, started = false;
  session.timer = setInterval(() => {
    if (current !== session) return;
    if (video.currentTime !== last) {
      last = video.currentTime; still = 0;
      if (video.currentTime > 0 && !started) { started = true; message(""); }
      else if (started && $("live-msg").textContent) message("");
      return;
    }
    still += 1;
    if (!started && still >= 12) message(`No video from camera ${session.cameraId} yet — it may be offline.`, true);
    if (started && still >= 5) message(`No video from camera ${session.cameraId} for ${still} s — the stream was lost.`, true);
  }, 1000);
}

export function hangUp({ keepalive = false } = {}) {
  const session = current;
  current = null;
  if (!session) return;
  clearInterval(session.timer);
  if (session.sessionId) {
    api(`/api/v1/cameras/${encodeURIComponent(session.cameraId)}/live/${session.sessionId}`, { method: "DELETE", keepalive })
      .catch(() => {});
  }
  session.pc.close();
  const video = $("live-video");
  video.srcObject = null;
}

// ---- "save the last N seconds" ------------------------------------------------------------------------------

function saveMessage(text, bad = false, incidentId = null) {
  const node = $("live-save-msg");
  node.classList.toggle("bad", bad);
  node.replaceChildren(text);
  if (incidentId !== null) {
    node.append(el("button", {
      type: "button", class: "ghost", id: "live-save-open",
      onclick: () => { $("live").close(); hooks.openIncident(incidentId); },
    }, `Show incident #${incidentId}`));
  }
}

// The operator may add the clip to the open incident in the panel; by default when it is this camera's.
function prepareSave(camera) {
  const incident = hooks.currentIncident();
  const into = incident && incident.open ? incident : null;
  $("live-save-into-label").hidden = !into;
  $("live-save-into").checked = Boolean(into && into.camera_id === camera.id);
  $("live-save-into").dataset.incident = into ? into.id : "";
  $("live-save-into-id").textContent = into ? `#${into.id}${into.camera_id !== camera.id ? ` (camera ${into.camera_id})` : ""}` : "";
  $("live-save-btn").disabled = false;
  saveMessage("");
}

async function saveClip(event) {
  event.preventDefault();
  const camera = shown;
  if (!camera) return;
  const seconds = Number($("live-save-s").value);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > MAX_SAVE_S) {
    saveMessage(`Choose 1 to ${MAX_SAVE_S} seconds.`, true);
    return;
  }
  const into = $("live-save-into").checked && $("live-save-into").dataset.incident
    ? Number($("live-save-into").dataset.incident) : null;
  $("live-save-btn").disabled = true;
  saveMessage(`Saving the last ${seconds} s of ${camera.id}…`);
  try {
    const answer = await api(`/api/v1/cameras/${encodeURIComponent(camera.id)}/clips`, {
      method: "POST", body: { seconds, incident_id: into, note: null },
    });
    if (shown !== camera) return;
    const where = into === null ? `new incident #${answer.incident_id}` : `incident #${answer.incident_id}`;
    saveMessage(`Requested: the last ${seconds} s of ${camera.id} go into ${where}; the clip appears there once the worker has uploaded it.`,
      false, answer.incident_id);
    $("live-save-msg").dataset.request = answer.request_id;
  } catch (err) {
    if (shown !== camera) return;
    const why = {
      422: `Not saved: ${err.message}`,
      404: `Not saved: camera ${camera.id} (or the incident) is not in your station's scope or does not exist.`,
      403: `Not saved: your role may not save clips (${err.message}).`,
      409: `Not saved: ${err.message}`,
    }[err instanceof ApiError ? err.status : 0];
    saveMessage(why || `Not saved: ${err.message}`, true);
  } finally {
    if (shown === camera) $("live-save-btn").disabled = false;
  }
}

// Diagnostics for support and tests: the current session's inbound video statistics.
async function liveStats() {
  if (!current) return null;
  const out = { connection: current.pc.connectionState, ice: current.pc.iceConnectionState, inbound: null };
  (await current.pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "video") {
      out.inbound = { packets: r.packetsReceived, frames: r.framesDecoded, keyframes: r.keyFramesDecoded,
        lost: r.packetsLost, codec: r.codecId, width: r.frameWidth, height: r.frameHeight, decoder: r.decoderImplementation };
    }
  });
  return out;
}

// `currentIncident()`: the incident open in the panel (or null); `openIncident(id)`: show one in the panel.
export function setupLive({ currentIncident, openIncident } = {}) {
  hooks = { currentIncident: currentIncident || hooks.currentIncident, openIncident: openIncident || hooks.openIncident };
  window.gridwatchLiveStats = liveStats;
  const dialog = $("live");
  $("live-close").addEventListener("click", () => dialog.close());
  $("live-save").addEventListener("submit", saveClip);
  dialog.addEventListener("close", () => { hangUp(); shown = null; });
  window.addEventListener("pagehide", () => hangUp({ keepalive: true }));
}
