// The operator console: sign-in, live alert feed, incident panel, grid map, camera list, live view.

import { api, ApiError, getToken, imageUrl, setToken, whenUnauthorized } from "./api.js";
import { loadCameras, renderCameras } from "./cameras.js";
import { ClipView } from "./clips.js";
import { Feed } from "./feed.js";
import { GridMap } from "./map.js";
import { hangUp, openLive, setupLive } from "./live.js";
import { $, ago, el, fmtTime, kindLabel, STATUS_LABEL, TIME_ZONE, toast } from "./util.js";

const MAX_CARDS = 300;
const state = {
  me: null,
  incidents: new Map(), // id -> incident (IncidentPublic)
  cards: new Map(), // id -> <li>
  selected: null,
  cameras: [],
  feed: null,
  map: null,
  mapTimer: null,
  audio: null,
  clips: null, // ClipView: the incident's event clips in the panel
};

// ---- sign-in ------------------------------------------------------------------------------------------

async function signIn(token) {
  setToken(token.trim());
  try {
    state.me = await api("/api/v1/me");
  } catch (err) {
    setToken("");
    throw err;
  }
  const scope = state.me.station_id ? (state.me.station_name || state.me.station_id) : "City (all stations)";
  $("scope").textContent = `${scope} · ${state.me.role.replace("_", " ")} · ${state.me.subject}`;
  $("scope").dataset.station = state.me.station_id || "";
  $("signout").hidden = false;
  $("layout").hidden = false;
  $("tz").textContent = TIME_ZONE;
  $("cards").focus();
  start();
}

function showSignIn(error = "") {
  $("layout").hidden = true;
  $("signout").hidden = true;
  $("scope").textContent = "not signed in";
  $("signin-error").textContent = error;
  if (!$("signin").open) $("signin").showModal();
}

function signOut() {
  stop();
  setToken("");
  state.me = null;
  state.incidents.clear();
  state.cards.clear();
  state.clips.reset();
  $("cards").replaceChildren();
  showSignIn();
}

// ---- feed (feed.js): reconnects resume from the last event id; only a fresh start loads from the REST API ----

function connectFeed() {
  state.feed = new Feed({
    onMessage: (msg) => upsert(msg.incident, msg.event),
    onOpen: ({ resumed }) => { if (!resumed) catchUp(); },
    onState: setConn,
    onRefused: (reason) => showSignIn(reason),
  });
  state.feed.start();
}

function setConn(value) {
  $("conn").dataset.state = value;
  $("conn").textContent = `feed: ${value}`;
}

async function catchUp() {
  try {
    const page = await api("/api/v1/incidents?limit=200");
    for (const incident of page.items.slice().reverse()) upsert(incident, null, { quiet: true });
    render();
    scheduleMap();
  } catch (err) {
    toast(`Could not load incidents: ${err.message}`);
  }
}

function upsert(incident, event, { quiet = false } = {}) {
  const known = state.incidents.get(incident.id);
  state.incidents.set(incident.id, incident);
  if (!quiet) {
    if (!known && event === "created" && incident.severity <= 2) cue(incident);
    render(!known ? incident.id : null);
    if (state.selected === incident.id) {
      if (event === "clip_added") state.clips.invalidate(); // another clip: list them again
      renderPanel(incident.id, { refetch: true });
    }
    scheduleMap();
  }
}

// A sound and a visual cue for severity 1–2.
function cue(incident) {
  document.body.classList.remove("alarm");
  void document.body.offsetWidth;
  document.body.classList.add("alarm");
  setTimeout(() => document.body.classList.remove("alarm"), 3200);
  try {
    state.audio = state.audio || new AudioContext();
    const ctx = state.audio;
    const beep = (at, freq) => {
      const osc = ctx.createOscillator(), gain = ctx.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.15, ctx.currentTime + at);
      gain.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + at + 0.25);
      osc.connect(gain).connect(ctx.destination);
      osc.start(ctx.currentTime + at);
      osc.stop(ctx.currentTime + at + 0.25);
    };
    beep(0, incident.severity === 1 ? 1200 : 880);
    beep(0.3, incident.severity === 1 ? 1200 : 880);
  } catch { /* no audio device: the visual cue stays */ }
}

// ---- the feed list ----------------------------------------------------------------------------------------

function visible(incident) {
  const filter = $("feed-filter").value;
  if (filter === "open") return incident.open;
  if (filter === "new") return incident.status === "new";
  return true;
}

function ordered() {
  return [...state.incidents.values()].sort((a, b) => b.id - a.id);
}

function placeOf(i) {
  return [i.cell_id, i.community_id, i.street_id].filter(Boolean).join(" · ");
}

function card(incident, fresh) {
  const li = el("li", {
    class: `card sev${incident.severity}${incident.open ? "" : " closed"}${fresh ? " fresh" : ""}`,
    dataset: { id: incident.id, status: incident.status, station: incident.station_id },
    onclick: () => select(incident.id),
  });
  const thumb = incident.snapshot_url ? el("img", { alt: "", loading: "lazy" }) : el("div", { class: "noimg" }, "no image");
  if (incident.snapshot_url) imageUrl(incident.snapshot_url).then((url) => { thumb.src = url; }).catch(() => {});
  li.append(
    thumb,
    el("div", {},
      el("div", { class: "row" },
        el("span", { class: "kind" }, kindLabel(incident.kind)),
        el("span", { class: `badge ${incident.status}` }, STATUS_LABEL[incident.status] || incident.status)),
      el("div", { class: "meta", title: incident.camera_id }, `camera ${incident.camera_id}`),
      el("div", { class: "meta", title: placeOf(incident) }, placeOf(incident) || "unassigned"),
      el("div", { class: "row meta" },
        el("time", { datetime: incident.last_seen }, fmtTime(incident.last_seen)),
        el("span", {}, `sev ${incident.severity}${incident.count > 1 ? ` · ×${incident.count}` : ""}`))),
  );
  return li;
}

function render(freshId = null) {
  const list = $("cards");
  const items = ordered().filter(visible).slice(0, MAX_CARDS);
  const nodes = items.map((incident) => {
    const old = state.cards.get(incident.id);
    if (old && old.dataset.status === incident.status && old.dataset.seen === incident.last_seen) return old;
    const node = card(incident, incident.id === freshId);
    node.dataset.seen = incident.last_seen;
    state.cards.set(incident.id, node);
    return node;
  });
  for (const node of nodes) node.classList.toggle("selected", Number(node.dataset.id) === state.selected);
  list.replaceChildren(...nodes);
  // Forget what is far out of view (bounded memory over a long shift).
  if (state.incidents.size > MAX_CARDS * 2) {
    for (const incident of ordered().slice(MAX_CARDS * 2)) {
      if (incident.id === state.selected) continue;
      state.incidents.delete(incident.id);
      state.cards.delete(incident.id);
    }
  }
  updateTitle();
}

function updateTitle() {
  let open = 0, fresh = 0;
  for (const i of state.incidents.values()) {
    if (i.open) open += 1;
    if (i.status === "new") fresh += 1;
  }
  const scope = state.me ? (state.me.station_name || state.me.station_id || "City") : "";
  document.title = `${fresh ? `(${fresh}) ` : ""}${open} open · GridWatch${scope ? ` · ${scope}` : ""}`;
  $("counts").replaceChildren(
    el("span", { class: fresh ? "new" : "", title: "New, not yet acknowledged" }, `${fresh} new`),
    el("span", { title: "Open incidents" }, `${open} open`));
}

// ---- the incident panel -------------------------------------------------------------------------------------

async function select(id, { scroll = true } = {}) {
  state.selected = id;
  for (const node of $("cards").children) node.classList.toggle("selected", Number(node.dataset.id) === id);
  const node = state.cards.get(id);
  if (node && scroll) node.scrollIntoView({ block: "nearest" });
  await renderPanel(id, { refetch: true });
}

async function renderPanel(id, { refetch = false } = {}) {
  let incident = state.incidents.get(id);
  $("panel-empty").hidden = true;
  $("panel-body").hidden = false;
  $("p-error").textContent = "";
  if (incident) fillPanel(incident, null);
  if (!refetch) return;
  try {
    const detail = await api(`/api/v1/incidents/${id}`);
    if (state.selected !== id) return;
    incident = detail;
    fillPanel(detail, detail.history);
  } catch (err) {
    $("p-error").textContent = err.message;
  }
}

function fillPanel(incident, history) {
  $("panel").dataset.id = incident.id;
  $("p-sev").className = `sev s${incident.severity}`;
  $("p-sev").textContent = incident.severity;
  $("p-sev").title = `severity ${incident.severity} (1 highest)`;
  $("p-title").textContent = `${kindLabel(incident.kind)} #${incident.id}`;
  $("p-status").className = `badge ${incident.status}`;
  $("p-status").textContent = STATUS_LABEL[incident.status] || incident.status;
  const img = $("p-img");
  if (incident.snapshot_url) imageUrl(incident.snapshot_url).then((url) => { img.src = url; }).catch(() => img.removeAttribute("src"));
  else img.removeAttribute("src");
  // The clip replaces the snapshot once there is one the browser can play.
  state.clips.show(incident, { onRefresh: () => renderPanel(incident.id, { refetch: true }) });
  const boxes = $("p-boxes");
  boxes.replaceChildren(...(incident.objects || []).filter((o) => Array.isArray(o.box)).map((o) => {
    const r = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    const [x1, y1, x2, y2] = o.box;
    r.setAttribute("x", x1); r.setAttribute("y", y1);
    r.setAttribute("width", Math.max(0, x2 - x1)); r.setAttribute("height", Math.max(0, y2 - y1));
    return r;
  }));
  const facts = [
    ["Camera", incident.camera_id], ["Cell", incident.cell_id], ["Community", incident.community_id],
    ["Street", incident.street_id], ["District", incident.district_id], ["Station", incident.station_id],
    ["First seen", fmtTime(incident.first_seen)], ["Last seen", `${fmtTime(incident.last_seen)} (${ago(incident.last_seen)} ago)`],
    ["Alerts", incident.count], ["Rule", [incident.rule, incident.zone].filter(Boolean).join(" / ")],
    ["Detail", incident.detail],
  ];
  $("p-facts").replaceChildren(...facts.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  const allowed = incident.allowed_transitions; // the center's workflow says what this incident may become
  $("act-ack").disabled = !allowed.includes("acknowledged");
  $("act-dispatch").disabled = !allowed.includes("dispatched");
  $("act-resolve").disabled = !allowed.includes("resolved");
  $("act-false").disabled = !allowed.includes("false_alarm");
  $("p-objects").replaceChildren(...(incident.objects || []).map((o) => el("li", {},
    `${o.cls} ${Math.round(o.confidence * 100)}%${o.track_id !== null ? ` · track ${o.track_id}` : ""}`)));
  if (!(incident.objects || []).length) $("p-objects").replaceChildren(el("li", { class: "muted" }, "none"));
  if (history) {
    $("p-history").replaceChildren(...history.map((h) => el("li", {},
      el("time", { datetime: h.at }, fmtTime(h.at)), " ",
      h.to_status ? `${h.from_status || ""} → ${h.to_status}` : h.event.replaceAll("_", " "),
      h.actor ? ` by ${h.actor}` : "", h.note ? ` — ${h.note}` : "")));
  }
}

async function transition(to, note = "") {
  const id = state.selected;
  if (id === null) return;
  const incident = state.incidents.get(id);
  if (incident && !incident.allowed_transitions.includes(to)) {
    toast(`Cannot go from ${incident.status} to ${to}`);
    return;
  }
  try {
    const updated = await api(`/api/v1/incidents/${id}/transitions`, { method: "POST", body: { to, note } });
    upsert(updated, "transition");
    toast(`#${id}: ${STATUS_LABEL[to]}`);
  } catch (err) {
    $("p-error").textContent = err instanceof ApiError && err.status === 409 ? `Not allowed: ${err.message}` : err.message;
    renderPanel(id, { refetch: true });
  }
}

function openDispatch() {
  if ($("act-dispatch").disabled) return;
  $("dispatch-form").hidden = false;
  $("d-to").focus();
}

function setupPanel() {
  $("act-ack").addEventListener("click", () => transition("acknowledged"));
  $("act-resolve").addEventListener("click", () => transition("resolved"));
  $("act-false").addEventListener("click", () => transition("false_alarm"));
  $("act-dispatch").addEventListener("click", openDispatch);
  $("act-live").addEventListener("click", liveForSelected);
  $("d-cancel").addEventListener("click", () => { $("dispatch-form").hidden = true; });
  $("dispatch-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const to = $("d-to").value.trim();
    const note = $("d-note").value.trim();
    if (!to) return;
    remember(to);
    $("dispatch-form").hidden = true;
    $("d-to").value = ""; $("d-note").value = "";
    await transition("dispatched", `to ${to}${note ? `: ${note}` : ""}`);
  });
  const people = JSON.parse(localStorage.getItem("gridwatch.dispatch") || "[]");
  $("d-people").replaceChildren(...people.map((p) => el("option", { value: p })));
}

function remember(name) {
  const people = JSON.parse(localStorage.getItem("gridwatch.dispatch") || "[]").filter((p) => p !== name);
  people.unshift(name);
  localStorage.setItem("gridwatch.dispatch", JSON.stringify(people.slice(0, 30)));
  $("d-people").replaceChildren(...people.slice(0, 30).map((p) => el("option", { value: p })));
}

function liveForSelected() {
  const incident = state.incidents.get(state.selected);
  if (!incident) return;
  const camera = state.cameras.find((c) => c.id === incident.camera_id) || { id: incident.camera_id };
  openLive(camera);
}

// ---- map and cell incidents ---------------------------------------------------------------------------------

function scheduleMap() {
  clearTimeout(state.mapTimer);
  state.mapTimer = setTimeout(() => state.map.refresh().catch((err) => toast(`Map: ${err.message}`)), 400);
}

async function showCell(feature) {
  const p = feature.properties;
  $("cell-list").hidden = false;
  $("cell-title").textContent = `${p.name || p.id} (${p.count} open)`;
  const seconds = Number($("cell-window").value);
  const since = new Date(Date.now() - seconds * 1000).toISOString();
  $("cell-incidents").replaceChildren(el("li", { class: "muted" }, "loading…"));
  try {
    const page = await api(`/api/v1/incidents?cell=${encodeURIComponent(p.id)}&since=${encodeURIComponent(since)}&limit=100`);
    $("cell-incidents").replaceChildren(...(page.items.length ? page.items.map((i) => el("li", {
      dataset: { id: i.id },
      onclick: () => { state.incidents.set(i.id, state.incidents.get(i.id) || i); render(); select(i.id); },
    }, `${fmtTime(i.first_seen)} · ${kindLabel(i.kind)} · ${STATUS_LABEL[i.status]} · ${i.camera_id}`))
      : [el("li", { class: "muted" }, "no incidents in this window")]));
  } catch (err) {
    $("cell-incidents").replaceChildren(el("li", { class: "error" }, err.message));
  }
}

// ---- keyboard ---------------------------------------------------------------------------------------------

function move(step, onlyNew = false) {
  const items = ordered().filter(visible);
  if (!items.length) return;
  let index = items.findIndex((i) => i.id === state.selected);
  for (let n = 0; n < items.length; n += 1) {
    index = index < 0 ? 0 : (index + step + items.length) % items.length;
    if (!onlyNew || items[index].status === "new") return select(items[index].id);
  }
}

function setupKeys() {
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if ([...document.querySelectorAll("dialog")].some((d) => d.open)) return;
    const tag = document.activeElement?.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || tag === "VIDEO") return; // a video's controls use keys
    const actions = {
      j: () => move(1), ArrowDown: () => move(1), k: () => move(-1), ArrowUp: () => move(-1),
      n: () => move(1, true), a: () => transition("acknowledged"), d: openDispatch,
      r: () => transition("resolved"), f: () => transition("false_alarm"), v: liveForSelected,
      "?": () => $("help").showModal(),
    };
    const action = actions[event.key];
    if (action && state.me) { event.preventDefault(); action(); }
  });
}

// ---- start / stop -----------------------------------------------------------------------------------------

let timers = [];

function start() {
  connectFeed();
  state.map.refresh().then(() => loadCameras(state)).catch((err) => toast(`Map: ${err.message}`));
  timers = [
    setInterval(() => loadCameras(state), 15000),
    setInterval(scheduleMap, 60000),
    setInterval(() => render(), 30000), // "x min ago" and the title stay current
  ];
}

function stop() {
  hangUp();
  timers.forEach(clearInterval);
  timers = [];
  if (state.feed) state.feed.stop();
  state.feed = null;
}

function main() {
  state.map = new GridMap($("map"), { onCell: showCell, onCamera: (cam) => openLive(cam) });
  setupPanel();
  state.clips = new ClipView();
  setupLive({ currentIncident: () => state.incidents.get(state.selected) || null, openIncident: (id) => select(id) });
  setupKeys();
  whenUnauthorized(() => { stop(); showSignIn("Your token was refused or has expired. Sign in again."); });
  $("feed-filter").addEventListener("change", () => render());
  $("cam-filter").addEventListener("input", () => renderCameras(state));
  $("cam-state").addEventListener("change", () => renderCameras(state));
  $("cell-window").addEventListener("change", () => {
    const picked = state.map.picked && state.map.cells.get(state.map.picked);
    if (picked) showCell(picked.feature);
  });
  $("cell-close").addEventListener("click", () => { $("cell-list").hidden = true; state.map.unpick(); });
  $("signout").addEventListener("click", signOut);
  $("help-btn").addEventListener("click", () => $("help").showModal());
  $("signin").addEventListener("cancel", (event) => event.preventDefault());
  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("signin-error").textContent = "";
    try {
      await signIn($("token").value);
      $("signin").close();
      $("token").value = "";
    } catch (err) {
      $("signin-error").textContent = err.status === 401 ? "That token was refused." : err.message;
    }
  });
  if (getToken()) signIn(getToken()).catch(() => showSignIn());
  else showSignIn();
}

main();
