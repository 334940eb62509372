// The camera list: every camera of the token's scope with its stream health, filtered on the page; "Live"
// opens the camera's live view. `state` is the console's (its `cameras` and `map`).

import { api } from "./api.js";
import { openLive } from "./live.js";
import { $, ago, el, toast } from "./util.js";

export async function loadCameras(state) {
  const all = [];
  let cursor = null;
  try {
    do {
      const page = await api(`/api/v1/cameras?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      all.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor && all.length < 10000);
  } catch (err) {
    toast(`Cameras: ${err.message}`);
    return;
  }
  state.cameras = all;
  renderCameras(state);
  state.map.cameras(all);
}

export function renderCameras(state) {
  const text = $("cam-filter").value.trim().toLowerCase();
  const wanted = $("cam-state").value;
  const rows = state.cameras.filter((c) => {
    const st = c.health?.state || "unknown";
    if (wanted && st !== wanted) return false;
    return !text || [c.id, c.name, c.cell_id, c.station_id].some((v) => v && v.toLowerCase().includes(text));
  }).slice(0, 500);
  $("cam-rows").replaceChildren(...rows.map((c) => {
    const h = c.health || {};
    const st = h.state || "unknown";
    return el("tr", { dataset: { camera: c.id, state: st } },
      el("td", { title: c.name || c.id }, c.name ? `${c.name} (${c.id})` : c.id),
      el("td", {}, c.cell_id || "—"),
      el("td", { class: `state ${st}`, title: h.reason || h.last_error || "" }, st),
      el("td", {}, h.fps != null ? h.fps.toFixed(1) : "—"),
      el("td", {}, h.last_frame_at ? `${ago(h.last_frame_at)} ago` : "—"),
      el("td", {}, el("button", { type: "button", onclick: () => openLive(c), title: "Live view" }, "Live")));
  }));
}
