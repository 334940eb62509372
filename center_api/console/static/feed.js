// The live feed: one WebSocket to /api/v1/feed that reconnects with backoff and jitter and resumes after the
// last event id it saw (`?after=`): the center replays from its store only what was missed, so a reconnect
// needs no refetch. Only the first connect, or one after a long gap, starts over from the REST API.

import { socketUrl } from "./api.js";

const POLICY_VIOLATION = 1008; // the token was refused: reconnecting will not help
const MAX_RESUME_GAP_MS = 10 * 60 * 1000; // down longer than this: reload the list instead of replaying it all
const MAX_BACKOFF_MS = 15000;

export class Feed {
  // onMessage(msg): a FeedMessage {type, event, event_id, incident}
  // onOpen({resumed}): connected; `resumed` false means nothing was replayed (load the list from the REST API)
  // onState("connecting" | "on" | "off"); onRefused(reason): the token was refused, the feed stays closed
  constructor({ onMessage, onOpen, onState, onRefused }) {
    Object.assign(this, { onMessage, onOpen, onState, onRefused });
    this.ws = null;
    this.timer = null;
    this.retry = 0;
    this.lastEventId = null;
    this.lostAt = 0;
  }

  start() {
    clearTimeout(this.timer);
    const gap = Date.now() - this.lostAt;
    const resume = this.lastEventId !== null && gap <= MAX_RESUME_GAP_MS ? this.lastEventId : null;
    this.lastEventId = resume;
    this.onState("connecting");
    const ws = new WebSocket(socketUrl("/api/v1/feed", resume === null ? {} : { after: resume }));
    this.ws = ws;
    ws.addEventListener("open", () => {
      this.retry = 0;
      this.onState("on");
      this.onOpen({ resumed: resume !== null });
    });
    ws.addEventListener("message", (event) => {
      let msg;
      try { msg = JSON.parse(event.data); } catch { return; }
      if (msg.type !== "incident" || !msg.incident) return;
      // Replicas relay each other's events, so ids may arrive slightly out of order: keep the highest.
      if (Number.isInteger(msg.event_id) && (this.lastEventId === null || msg.event_id > this.lastEventId)) {
        this.lastEventId = msg.event_id;
      }
      this.onMessage(msg);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return; // stopped, or replaced by a newer socket
      this.ws = null;
      this.lostAt = Date.now();
      this.onState("off");
      if (event.code === POLICY_VIOLATION) { this.onRefused(event.reason || "The token was refused."); return; }
      const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.retry) * (0.6 + Math.random() * 0.4);
      this.retry += 1;
      this.timer = setTimeout(() => this.start(), delay);
    });
  }

  stop() {
    clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close();
  }
}
