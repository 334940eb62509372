// The grid map: cells from the center's GeoJSON drawn as SVG paths (no tiles, works offline), colored by
// open incidents; cameras as dots colored by health. Clicking a cell calls `onCell(feature)`.

import { api } from "./api.js";

const SVG = "http://www.w3.org/2000/svg";

export function level(count) {
  if (!count) return "l0";
  if (count === 1) return "l1";
  if (count <= 3) return "l2";
  return "l3";
}

function rings(geometry) {
  if (!geometry) return [];
  if (geometry.type === "Polygon") return geometry.coordinates;
  if (geometry.type === "MultiPolygon") return geometry.coordinates.flat();
  return [];
}

export class GridMap {
  constructor(svg, { onCell, onCamera } = {}) {
    this.svg = svg;
    this.onCell = onCell || (() => {});
    this.onCamera = onCamera || (() => {});
    this.cells = new Map(); // cell id -> {path, feature}
    this.project = null;
    this.picked = null;
    this.cameraLayer = null;
  }

  async refresh() {
    const fc = await api("/api/v1/grid/cells?open_only=true");
    const features = fc.features || [];
    if (!this.project || features.length !== this.cells.size) this.draw(features);
    for (const f of features) {
      const entry = this.cells.get(f.id ?? f.properties.id);
      if (!entry) continue;
      entry.feature = f;
      const count = f.properties.count || 0;
      entry.path.setAttribute("class", `cell ${level(count)}${this.picked === f.properties.id ? " picked" : ""}`);
      entry.path.dataset.count = String(count);
      entry.title.textContent = `${f.properties.name || f.properties.id} — ${count} open`;
    }
    return fc;
  }

  draw(features) {
    this.svg.replaceChildren();
    this.cells.clear();
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    for (const f of features) for (const ring of rings(f.geometry)) for (const [x, y] of ring) {
      minX = Math.min(minX, x); maxX = Math.max(maxX, x); minY = Math.min(minY, y); maxY = Math.max(maxY, y);
    }
    if (!Number.isFinite(minX)) return;
    // Equirectangular with the longitude scaled by cos(latitude): right for a city-sized area.
    const kx = Math.cos(((minY + maxY) / 2) * Math.PI / 180);
    const scale = 1000 / Math.max((maxX - minX) * kx, maxY - minY, 1e-9);
    this.project = ([lon, lat]) => [(lon - minX) * kx * scale, (maxY - lat) * scale];
    const width = (maxX - minX) * kx * scale, height = (maxY - minY) * scale;
    const pad = 8;
    this.svg.setAttribute("viewBox", `${-pad} ${-pad} ${width + 2 * pad} ${height + 2 * pad}`);
    this.unit = Math.max(width, height) / 1000;
    const cellLayer = document.createElementNS(SVG, "g");
    for (const f of features) {
      const id = f.id ?? f.properties.id;
      const d = rings(f.geometry).map((ring) => "M" + ring.map((p) => this.project(p).map((v) => v.toFixed(1)).join(",")).join("L") + "Z").join("");
      const path = document.createElementNS(SVG, "path");
      path.setAttribute("d", d);
      path.setAttribute("class", "cell l0");
      path.dataset.cell = id;
      const title = document.createElementNS(SVG, "title");
      path.append(title);
      path.addEventListener("click", () => this.pick(id));
      cellLayer.append(path);
      this.cells.set(id, { path, title, feature: f });
    }
    this.cameraLayer = document.createElementNS(SVG, "g");
    this.svg.append(cellLayer, this.cameraLayer);
  }

  pick(id) {
    if (this.picked && this.cells.has(this.picked)) this.cells.get(this.picked).path.classList.remove("picked");
    this.picked = id;
    const entry = this.cells.get(id);
    if (!entry) return;
    entry.path.classList.add("picked");
    this.onCell(entry.feature);
  }

  unpick() {
    if (this.picked && this.cells.has(this.picked)) this.cells.get(this.picked).path.classList.remove("picked");
    this.picked = null;
  }

  cameras(list) {
    if (!this.cameraLayer || !this.project) return;
    this.cameraLayer.replaceChildren();
    const r = Math.max(3, 5 * (this.unit || 1));
    for (const cam of list) {
      if (!cam.location) continue;
      const [x, y] = this.project([cam.location.lon, cam.location.lat]);
      const dot = document.createElementNS(SVG, "circle");
      dot.setAttribute("cx", x.toFixed(1));
      dot.setAttribute("cy", y.toFixed(1));
      dot.setAttribute("r", r.toFixed(1));
      const state = cam.health?.state || "unknown";
      dot.setAttribute("class", `cam ${state}`);
      dot.dataset.camera = cam.id;
      const title = document.createElementNS(SVG, "title");
      title.textContent = `${cam.name || cam.id} — ${state}`;
      dot.append(title);
      dot.addEventListener("click", (e) => { e.stopPropagation(); this.onCamera(cam); });
      this.cameraLayer.append(dot);
    }
  }
}
