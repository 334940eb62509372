// Small DOM and time helpers.

export const TIME_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", timeZone: TIME_ZONE });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, {
  month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", timeZone: TIME_ZONE,
});

export function $(id) { return document.getElementById(id); }

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Times shown to the operator are in the operator's (the browser's) time zone.
export function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  const sameDay = new Date().toDateString() === d.toDateString();
  return (sameDay ? timeFmt : dateTimeFmt).format(d);
}

export function ago(iso) {
  if (!iso) return "—";
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86400) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

export const KIND_LABEL = {
  intrusion: "Intrusion", loitering: "Loitering", crowd: "Crowd", line_crossing: "Line crossing",
  vehicle_restricted: "Restricted vehicle", tamper: "Camera tampering", camera_offline: "Camera offline",
  camera_online: "Camera back online", operator_clip: "Saved clip",
};
export function kindLabel(kind) { return KIND_LABEL[kind] || kind; }

export const STATUS_LABEL = {
  new: "new", acknowledged: "acknowledged", dispatched: "dispatched", resolved: "resolved", false_alarm: "false alarm",
};

export function toast(text, ms = 3500) {
  const node = $("toast");
  node.textContent = text;
  node.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { node.hidden = true; }, ms);
}
