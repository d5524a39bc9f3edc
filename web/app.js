// SPDX-License-Identifier: BSD-3-Clause
// The fanout web client. One websocket carries everything live (protocol v1,
// docs/protocol.md); the HTTP API creates channels and opens DMs.
//
// State per channel: the messages by seq, and lastSeq, the highest seq seen.
// On (re)connect every channel is subscribed with since = lastSeq, so the
// server replays exactly what was missed; a message at or below what is
// already shown is dropped, so nothing is lost or shown twice. A message is
// shown at once as "sending" (local echo) and replaced by the stored one when
// its ack or its broadcast arrives, matched by client_msg_id. Edits, deletes
// and reactions are events with their own seq naming their message; they are
// applied to it, from history or live alike.
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  token: null,
  me: null,
  ws: null,
  connected: false,
  req: 0,
  waiting: new Map(), // req -> {resolve, reject}
  channels: new Map(), // id -> channel
  current: null,
  thread: null, // {channel, parent}
  picker: null, // "channel:seq" of the message whose reaction picker is open
  retry: 0,
  pingTimer: null,
  heartbeatMs: 30000,
  typing: new Map(), // channel -> Map(user -> expiry ms)
  typingSent: 0,
  presence: new Map(), // user -> "online" | "away" | "offline"
  readDelayMs: 300, // a burst of reads becomes one mark_read
  watched: "",
  watchTimer: null,
  awayTimer: null,
};

// ---------------------------------------------------------------- channels

function channelState(info) {
  let c = state.channels.get(info.id);
  if (!c) {
    // The server's unread count is taken once, when the page first learns of
    // the channel; after that this page counts what arrives itself, so a
    // reconnect does not reset what the user has already seen.
    c = { id: info.id, messages: new Map(), pending: new Map(), lastSeq: info.last_seq || 0,
          unread: info.unread || 0, mentions: info.mentions || 0, lastRead: info.last_read_seq || 0, loaded: false, hasOlder: true };
    state.channels.set(info.id, c);
  }
  c.name = info.name;
  c.kind = info.kind;
  c.peer = info.peer || c.peer;
  c.role = info.role || c.role;
  return c;
}

function label(c) {
  return c.kind === "dm" ? (c.peer || "direct message") : c.name;
}

function dot(user) {
  const d = document.createElement("span");
  d.dataset.user = user;
  paintDot(d);
  return d;
}

function paintDot(d) {
  // We are present to ourselves, before any answer from the server.
  const user = d.dataset.user;
  const status = user === state.me.name ? "online" : state.presence.get(user) || "offline";
  d.className = "dot " + status;
  d.title = status;
}

// A presence change redraws the dots in place: the message list is not
// rebuilt (nor scrolled) under a reader.
function refreshDots() {
  for (const d of document.querySelectorAll("#messages .dot, #thread-messages .dot")) paintDot(d);
}

// Watches the presence of the users on screen: DM peers and the authors of
// the open channel. The server costs nothing for users nobody looks at.
function watchPresence() {
  clearTimeout(state.watchTimer);
  state.watchTimer = setTimeout(async () => {
    const users = new Set();
    for (const c of state.channels.values()) if (c.kind === "dm" && c.peer) users.add(c.peer);
    const c = state.channels.get(state.current);
    if (c) for (const m of c.messages.values()) if (m.author) users.add(m.author);
    const list = [...users].sort().slice(0, 500);
    lookupNames(list); // names.js: display names of the users on screen
    const key = list.join(",");
    if (!state.connected || key === state.watched) return;
    state.watched = key;
    const r = await request({ type: "presence_subscribe", users: list }).catch(() => null);
    if (r && r.type === "presence_subscribed") {
      for (const u of r.users) state.presence.set(u.user, u.status);
      renderSidebar();
      refreshDots();
    }
  }, 200);
}

function renderSidebar() {
  watchPresence();
  const channels = $("channels"), dms = $("dms");
  channels.replaceChildren();
  dms.replaceChildren();
  const sorted = [...state.channels.values()].sort((a, b) => label(a).localeCompare(label(b)));
  for (const c of sorted) {
    // a list item holding a button: Tab reaches it, Enter and Space open it
    const li = document.createElement("li"), item = document.createElement("button");
    item.type = "button";
    item.className = "item" + (c.id === state.current ? " active" : "") + (c.unread ? " unread" : "");
    item.dataset.channel = c.id;
    if (c.id === state.current) item.setAttribute("aria-current", "page");
    li.append(item);
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = (c.kind === "dm" ? "" : c.kind === "private" ? "🔒 " : c.kind === "ephemeral" ? "⚡ " : "# ") + label(c);
    if (c.kind === "dm" && c.peer) name.prepend(dot(c.peer));
    item.append(name);
    if (c.mentions || c.unread) {
      // a mention outranks a count: "@2" says someone asked for you
      const badge = document.createElement("span");
      const n = c.mentions || c.unread;
      badge.className = "badge" + (c.mentions ? " mention" : "");
      badge.textContent = (c.mentions ? "@" : "") + (n > 99 ? "99+" : String(n));
      item.append(badge);
    }
    item.addEventListener("click", () => openChannel(c.id));
    (c.kind === "dm" ? dms : channels).append(li);
  }
  // the tab says how many mentions and messages wait unread: "(@1 · 3) fanout"
  const count = (key) => Math.min(sorted.reduce((n, c) => n + c[key], 0), 99);
  const parts = [count("mentions") && `@${count("mentions")}`, count("unread")].filter((x) => x);
  document.title = parts.length ? `(${parts.join(" · ")}) fanout` : "fanout";
}

async function openChannel(id) {
  const c = state.channels.get(id);
  if (!c) return;
  state.current = id;
  // "New messages" marks where the reader left off, while the channel is open
  c.divider = c.unread > 0 ? c.lastRead : null;
  c.unread = c.mentions = 0;
  $("channel-title").textContent = (c.kind === "dm" ? "" : c.kind === "private" ? "🔒 " : "#") + label(c);
  $("channel-meta").textContent = c.kind === "dm" ? "direct message"
    : c.kind === "ephemeral" ? "live feed: messages are not kept" : c.kind + " channel";
  $("composer-input").placeholder = "Message " + (c.kind === "dm" ? label(c) : "#" + label(c));
  document.dispatchEvent(new CustomEvent("fanout:channel", { detail: c })); // directory.js
  closeThread();
  renderSidebar();
  renderMessages();
  if (!c.loaded) await loadOlder(c);
  markRead(c);
  renderTyping();
  $("composer-input").focus();
}

// ---------------------------------------------------------------- messages

// Takes a stored message into the channel's state; false if already there.
// live: it arrived as it happened. A parent read from history already counts
// the replies that existed then, so only live replies add to its count.
function accept(c, m, live = false) {
  if (c.messages.has(m.seq)) return false;
  c.messages.set(m.seq, m);
  c.pending.delete(m.client_msg_id);
  if (m.seq > c.lastSeq) c.lastSeq = m.seq;
  if (m.kind && m.kind !== "message") {
    applyEvent(c, m);
    return true;
  }
  if (live && m.parent_seq) {
    const parent = c.messages.get(m.parent_seq);
    if (parent) parent.reply_count = (parent.reply_count || 0) + 1;
  }
  return true;
}

// An event changes the message it names. Reactions are re-read from the
// server, which knows the set of who reacted (history reports counts and
// whether "me" is among them), so counts never drift.
function applyEvent(c, e) {
  const target = c.messages.get(e.parent_seq);
  if (!target) return;
  if (e.kind === "edit" && !target.deleted) {
    target.text = e.text;
    target.edited = true;
  } else if (e.kind === "delete") {
    target.text = "";
    target.deleted = true;
    target.reactions = [];
  } else if (e.kind === "react" || e.kind === "unreact") {
    refreshReactions(c, e.parent_seq);
  }
}

// After an event on message seq: its item, and the thread pane.
function rerender(c, seq) {
  if (c.id !== state.current) return;
  updateMessage(c, seq);
  renderThread();
}

function onMessage(m) {
  const c = state.channels.get(m.channel);
  if (!c || !accept(c, m, true)) return;
  const visible = c.id === state.current && document.visibilityState === "visible";
  if (!visible && !m.parent_seq && m.author !== state.me.name) c.unread++;
  if (c.kind === "dm" && m.author !== state.me.name && (m.kind || "message") === "message")
    document.dispatchEvent(new CustomEvent("fanout:notice", { detail: { c, m } })); // notify.js
  // The message they were typing has arrived: they are not typing now.
  if (state.typing.has(c.id) && state.typing.get(c.id).delete(m.author) && c.id === state.current) renderTyping();
  if (m.kind && m.kind !== "message") {
    rerender(c, m.parent_seq);
    return;
  }
  if (c.id === state.current) {
    if (!m.parent_seq) updateMessages(c); else updateReplyCount(c, m.parent_seq);
    if (state.thread && state.thread.parent === m.parent_seq) renderThread();
    if (visible) markRead(c);
  }
  sidebarSoon();
}

// The sidebar again at the next frame, once however many messages came.
let sidebarQueued = false;
function sidebarSoon() {
  if (sidebarQueued) return;
  sidebarQueued = true;
  requestAnimationFrame(() => { sidebarQueued = false; renderSidebar(); });
}

// Moves the read cursor to what is on screen now: at once in this page (a
// reader who leaves and comes straight back finds the "new messages" line
// after what they saw), on the server a moment later, at most one request
// per burst. Per channel, and with the seq seen now: a reader who leaves at
// once still moves the cursor of the channel left, and only over what they
// saw there.
function markRead(c) {
  const seq = c.lastSeq;
  c.lastRead = Math.max(c.lastRead, seq);
  clearTimeout(c.readTimer);
  c.readTimer = setTimeout(() => {
    if (state.connected && seq) request({ type: "mark_read", channel: c.id, seq }).catch(() => {});
  }, state.readDelayMs);
}

// One formatter for every item (toLocaleTimeString builds one per call).
const timeFormat = new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit" });
function formatTime(ts) {
  return timeFormat.format(new Date(ts));
}

function messageElement(m, { pending = false, inThread = false } = {}) {
  const li = document.createElement("li");
  li.className = "message" + (pending ? " pending" : "");
  if (m.seq) li.dataset.seq = m.seq;
  li.dataset.clientMsgId = m.client_msg_id;
  const head = document.createElement("div");
  head.className = "head";
  const author = document.createElement("span");
  author.className = "author";
  author.append(whoElement(m.author), dot(m.author)); // names.js
  const time = document.createElement("time");
  time.textContent = pending ? "sending…" : formatTime(m.ts);
  if (!pending) time.dateTime = m.ts;
  head.append(author, time);
  const text = document.createElement("div");
  text.className = "text" + (m.deleted ? " deleted" : "");
  if (m.deleted) text.textContent = "This message was deleted.";
  else text.append(Format.render(m.text));
  if (m.edited && !m.deleted) {
    const mark = document.createElement("span");
    mark.className = "edited";
    mark.textContent = " (edited)";
    const last = text.lastElementChild;
    (last && last.tagName === "P" ? last : text).append(mark);
  }
  li.append(head, text);
  if (!pending && !m.deleted) {
    li.append(reactionBar(m));
    li.append(actions(m));
  }
  if (!inThread && !pending) {
    const replies = document.createElement("button");
    replies.className = "replies link" + (m.reply_count ? "" : " none");
    replies.textContent = m.reply_count ? `${m.reply_count} ${m.reply_count === 1 ? "reply" : "replies"}` : "Reply in thread";
    replies.addEventListener("click", () => openThread(m.channel, m.seq));
    li.append(replies);
  }
  return li;
}

function actions(m) {
  const box = document.createElement("div");
  box.className = "actions";
  const add = document.createElement("button");
  add.className = "action";
  add.textContent = "☺+";
  add.title = "Add a reaction";
  add.addEventListener("click", (e) => { e.stopPropagation(); picker(box, m); });
  box.append(add);
  // A re-render (a message, a presence change) keeps an open picker open.
  if (state.picker === `${m.channel}:${m.seq}`) picker(box, m);
  if (m.author === state.me.name) {
    const edit = document.createElement("button");
    edit.className = "action";
    edit.textContent = "Edit";
    edit.addEventListener("click", () => editMessage(m));
    const del = document.createElement("button");
    del.className = "action";
    del.textContent = "Delete";
    del.addEventListener("click", () => deleteMessage(m));
    box.append(edit, del);
  }
  return box;
}

// A refused send: the reason under the composer it came from, and the text
// back in it (unless something new was typed) to correct and send again.
function refused(where, text, message) {
  const input = $(where === "thread" ? "thread-input" : "composer-input");
  const error = $(where === "thread" ? "thread-error" : "composer-error");
  if (!input.value) input.value = text;
  error.textContent = message;
  error.hidden = false;
}

// A refusal about one message, shown under it for a while.
function itemError(m, message) {
  const li = document.querySelector(`#messages li[data-seq="${m.seq}"], #thread-messages li[data-seq="${m.seq}"]`);
  if (!li) return flash(message);
  const p = document.createElement("p");
  p.className = "error";
  p.setAttribute("role", "alert");
  p.textContent = message;
  li.append(p);
  setTimeout(() => p.remove(), 6000);
}

// A request's refusal in words, or null when it was done.
async function refusal(msg) {
  const r = await request(msg).catch(() => null);
  if (!r) return "The server did not answer; try again.";
  return r.type === "error" ? r.message : null;
}

function editMessage(m) {
  ask("Edit message", { value: m.text }, (a) => a.value === m.text ? null
    : refusal({ type: "edit", channel: m.channel, seq: m.seq, text: a.value, client_msg_id: newId() }));
}

function deleteMessage(m) {
  ask("Delete this message? Type \"delete\" to confirm", {}, (a) => a.value !== "delete"
    ? "Type delete to confirm, or Cancel."
    : refusal({ type: "delete", channel: m.channel, seq: m.seq, client_msg_id: newId() }));
}

function newId() {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

// Sends a message with local echo; retries with the same id after a
// reconnect until it is acked, so it is stored exactly once.
async function send(channelId, text, parentSeq) {
  const c = state.channels.get(channelId);
  const echo = { channel: channelId, author: state.me.name, text, client_msg_id: newId(),
                 parent_seq: parentSeq || null };
  c.pending.set(echo.client_msg_id, echo);
  // Others drop our typing line when the message arrives; the next
  // keystroke announces typing again at once.
  state.typingSent = 0;
  parentSeq ? renderThread() : updateMessages(c);
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      const ack = await request({ type: "publish", channel: channelId, text,
                                  client_msg_id: echo.client_msg_id, ...(parentSeq ? { parent_seq: parentSeq } : {}) });
      if (ack.type === "ack") {
        // The broadcast usually arrived first; if not, show the acked one now.
        if (c.pending.has(echo.client_msg_id)) {
          c.pending.delete(echo.client_msg_id);
          accept(c, { ...echo, type: "message", seq: ack.seq, id: `${channelId}:${ack.seq}`, ts: ack.ts, kind: "message" }, true);
        }
        break;
      }
      if (ack.code === "rate_limited" || ack.code === "overloaded" || ack.code === "unavailable") {
        await sleep(500);
        continue;
      }
      c.pending.delete(echo.client_msg_id);
      refused(parentSeq ? "thread" : "composer", text, ack.message || ack.code);
      break;
    } catch (e) {
      await sleep(500); // disconnected: retry after the reconnect
    }
  }
  if (c.id === state.current) parentSeq ? renderThread() : updateMessages(c);
}

// ---------------------------------------------------------------- threads

async function openThread(channelId, parentSeq) {
  state.thread = { channel: channelId, parent: parentSeq };
  $("thread").hidden = false;
  const page = await request({ type: "history", channel: channelId, thread: parentSeq, limit: 200 });
  const c = state.channels.get(channelId);
  if (page.type === "history") for (const m of page.messages) accept(c, m);
  renderThread();
  $("thread-input").focus();
}

function closeThread() {
  state.thread = null;
  $("thread").hidden = true;
}

function renderThread() {
  if (!state.thread) return;
  const c = state.channels.get(state.thread.channel);
  const list = $("thread-messages");
  list.replaceChildren();
  const parent = c.messages.get(state.thread.parent);
  if (parent) list.append(messageElement(parent, { inThread: true }));
  const replies = [...c.messages.values()]
    .filter((m) => m.parent_seq === state.thread.parent && (m.kind || "message") === "message")
    .sort((a, b) => a.seq - b.seq);
  for (const m of replies) list.append(messageElement(m, { inThread: true }));
  for (const p of c.pending.values()) if (p.parent_seq === state.thread.parent) list.append(messageElement(p, { pending: true, inThread: true }));
  list.scrollTop = list.scrollHeight;
}

// ---------------------------------------------------------------- connection

function request(msg) {
  return new Promise((resolve, reject) => {
    if (!state.connected) return reject(new Error("offline"));
    const req = String(++state.req);
    state.waiting.set(req, { resolve, reject });
    state.ws.send(JSON.stringify({ ...msg, req }));
  });
}

function setStatus(text, ok) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("ok", !!ok);
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/ws?token=${encodeURIComponent(state.token)}`);
  state.ws = ws;
  ws.onmessage = (e) => onFrame(JSON.parse(e.data));
  ws.onclose = (e) => {
    state.connected = false;
    for (const w of state.waiting.values()) w.reject(new Error("disconnected"));
    state.waiting.clear();
    clearInterval(state.pingTimer);
    if (!state.me) { // never got hello: the token was refused
      showSignin(e.code === 1008 && e.reason ? `That token was not accepted: ${e.reason}.`
        : "That token was not accepted.");
      return;
    }
    const delay = Math.min(10000, 250 * 2 ** state.retry++);
    setStatus(`Reconnecting in ${Math.ceil(delay / 1000)} s…`);
    setTimeout(connect, delay);
  };
}

async function onHello(h) {
  const first = !state.me;
  state.me = h.user;
  state.watched = ""; // a new connection watches nothing yet
  state.connected = true;
  state.retry = 0;
  state.heartbeatMs = h.heartbeat_ms;
  clearInterval(state.pingTimer);
  state.pingTimer = setInterval(() => request({ type: "ping" }).catch(() => {}), h.heartbeat_ms / 2);
  $("me").textContent = displayOf(h.user.name);
  lookupNames([h.user.name]);
  setStatus("Connected", true);
  for (const info of h.channels) {
    const c = channelState(info);
    // A live feed's seq restarts with the server and it has no history:
    // forget what was shown so that new messages are not taken for old ones.
    if (c.kind === "ephemeral") { c.messages.clear(); c.lastSeq = 0; }
  }
  // Resume: each channel from what this page has already seen.
  const subs = [...state.channels.values()].map((c) => ({ channel: c.id, since: c.lastSeq }));
  if (subs.length) await request({ type: "subscribe", channels: subs });
  renderSidebar();
  if (first) {
    const general = [...state.channels.values()].find((c) => c.name === "general");
    await openChannel((general || [...state.channels.values()][0]).id);
  } else if (state.current) {
    renderMessages();
  }
  document.dispatchEvent(new CustomEvent("fanout:hello")); // ops.js: the operator page
}

async function refreshChannels() {
  const r = await api("GET", "/api/v1/channels");
  if (!r.ok) return;
  for (const info of r.body.channels) {
    const known = state.channels.has(info.id);
    const c = channelState(info);
    // from the head the list reported: the history comes a page at a time
    // when the channel opens, not all of it over the socket now
    if (!known && state.connected) await request({ type: "subscribe", channels: [{ channel: c.id, since: c.lastSeq }] });
    // a DM that came with its first message already in it: that message is
    // before the head subscribed from, so notify.js hears of it here
    if (!known && c.kind === "dm" && info.unread > 0) {
      const page = await request({ type: "history", channel: c.id, before: c.lastSeq + 1, limit: 1 }).catch(() => null);
      const m = page && page.messages && page.messages[0];
      if (m && m.author !== state.me.name) document.dispatchEvent(new CustomEvent("fanout:notice", { detail: { c, m } }));
    }
  }
  renderSidebar();
}

// Someone named us (or the channel) in a message (docs/protocol.md): a badge
// unless it is in view, and notify.js tells the desktop while the page is hidden.
function onMention(f) {
  const c = state.channels.get(f.channel);
  if (!c) return;
  if (!(c.id === state.current && document.visibilityState === "visible")) c.mentions++;
  renderSidebar();
  document.dispatchEvent(new CustomEvent("fanout:notice", { detail: { c, m: f } }));
}

function onFrame(f) {
  if (f.req && state.waiting.has(f.req)) {
    const w = state.waiting.get(f.req);
    state.waiting.delete(f.req);
    w.resolve(f);
  }
  switch (f.type) {
    case "hello": onHello(f); break;
    case "message": onMessage(f); break;
    case "mention": onMention(f); break;
    case "joined": refreshChannels(); break;
    case "left":
      state.channels.delete(f.channel);
      if (state.current === f.channel) openChannel([...state.channels.keys()][0]);
      renderSidebar();
      break;
    case "read": {
      // Another device of ours (or this one) read up to f.seq. An answer
      // to an older mark_read can come after the channel was opened again:
      // what is in view stays read.
      const c = state.channels.get(f.channel);
      if (c) {
        c.lastRead = Math.max(c.lastRead, f.seq);
        const inView = c.id === state.current && document.visibilityState === "visible";
        if (inView || c.lastRead >= c.lastSeq) c.mentions = 0;
        c.unread = inView ? 0 : [...c.messages.values()].filter((m) => m.seq > c.lastRead &&
          !m.parent_seq && (m.kind || "message") === "message" && m.author !== state.me.name).length;
        renderSidebar();
      }
      break;
    }
    case "presence":
      state.presence.set(f.user, f.status);
      renderSidebar();
      refreshDots();
      break;
    case "typing":
      if (f.user !== state.me.name) {
        if (!state.typing.has(f.channel)) state.typing.set(f.channel, new Map());
        state.typing.get(f.channel).set(f.user, Date.now() + f.expires_ms);
        renderTyping();
        setTimeout(renderTyping, f.expires_ms + 50);
      }
      break;
    case "lagged": setStatus("Catching up…"); setTimeout(() => state.connected && setStatus("Connected", true), 1500); break;
    case "error": if (!f.req) flash(f.message); break;
  }
}

// ---------------------------------------------------------------- API, UI

async function api(method, path, body) {
  const r = await fetch(path, { method, headers: { Authorization: "Bearer " + state.token,
    "Content-Type": "application/json" }, body: body ? JSON.stringify(body) : undefined });
  return { ok: r.ok, status: r.status, body: await r.json().catch(() => ({})) };
}

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

function renderTyping() {
  const who = [...(state.typing.get(state.current) || new Map()).entries()]
    .filter(([, until]) => until > Date.now()).map(([user]) => user);
  const el = $("typing");
  el.textContent = who.length === 0 ? "" : who.length === 1 ? `${who[0]} is typing…`
    : who.length === 2 ? `${who[0]} and ${who[1]} are typing…` : "Several people are typing…";
}

// Tells the channel we are typing; the server coalesces, we also do.
function typed() {
  const now = Date.now();
  if (!state.connected || !state.current || now - state.typingSent < 2000) return;
  state.typingSent = now;
  state.ws.send(JSON.stringify({ type: "typing", channel: state.current }));
}

function flash(text) {
  setStatus(text);
  setTimeout(() => state.connected && setStatus("Connected", true), 3000);
}

// The one-line dialog. submit({value, private}) does the work and returns
// null when done (the dialog closes) or what went wrong, in words, which
// the dialog shows under the field and stays open to correct. Cancel closes.
function ask(title, { privateOption = false, value = "", people = false } = {}, submit) {
  const d = $("prompt");
  $("prompt-title").textContent = title;
  $("prompt-input").value = value;
  // people: the field suggests users from the directory as one types (names.js)
  if (people) $("prompt-input").setAttribute("list", "people"); else $("prompt-input").removeAttribute("list");
  $("prompt-private").checked = false;
  $("prompt-private-label").hidden = !privateOption;
  $("prompt-error").hidden = true;
  $("prompt-form").onsubmit = async (e) => {
    if (e.submitter && e.submitter.value === "cancel") return; // the dialog closes
    e.preventDefault();
    const v = $("prompt-input").value.trim();
    if (!v) return $("prompt-input").focus();
    $("prompt-ok").disabled = true;
    const error = await Promise.resolve()
      .then(() => submit({ value: v, private: $("prompt-private").checked }))
      .catch(() => "The server did not answer; try again.");
    $("prompt-ok").disabled = false;
    if (!error) return d.close();
    $("prompt-error").hidden = false;
    $("prompt-error").textContent = error;
    $("prompt-input").focus();
  };
  d.showModal();
}

// An API answer's refusal in words, or null when it succeeded.
function apiRefusal(r) {
  if (r.ok) return null;
  return r.body && r.body.error ? r.body.error.message : "The server did not answer; try again.";
}

function createChannel() {
  ask("Create a channel", { privateOption: true }, async (a) => {
    const r = await api("POST", "/api/v1/channels", { name: a.value.toLowerCase(), kind: a.private ? "private" : "public" });
    if (r.ok) {
      await refreshChannels();
      openChannel(r.body.channel.id);
    }
    return apiRefusal(r);
  });
}

function openDm() {
  ask("Message someone (user name)", { people: true }, async (a) => {
    const r = await api("POST", "/api/v1/dms", { user: a.value });
    if (r.ok) {
      await refreshChannels();
      openChannel(r.body.channel.id);
    }
    return apiRefusal(r);
  });
}

function showSignin(error) {
  localStorage.removeItem("fanout.token");
  $("app").hidden = true;
  $("signin").hidden = false;
  $("signin-error").hidden = !error;
  $("signin-error").textContent = error || "";
}

function start(token) {
  state.token = token;
  localStorage.setItem("fanout.token", token);
  $("signin").hidden = true;
  $("app").hidden = false;
  connect();
}

// Enter sends: the form's own submit handler, called by an event of our
// own (requestSubmit would first lay out the whole page to find the submit
// button, tens of ms under a long channel).
function submitOnEnter(input, form) {
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      form.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", (e) => { e.preventDefault(); start($("token-input").value.trim()); });
  for (const [input, error] of [["composer-input", "composer-error"], ["thread-input", "thread-error"]])
    $(input).addEventListener("input", () => { $(error).hidden = true; });
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("composer-input").value.trim();
    if (!text || !state.current) return;
    $("composer-input").value = "";
    send(state.current, text, null);
  });
  $("thread-composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("thread-input").value.trim();
    if (!text || !state.thread) return;
    $("thread-input").value = "";
    send(state.thread.channel, text, state.thread.parent);
  });
  submitOnEnter($("composer-input"), $("composer"));
  $("composer-input").addEventListener("input", typed);
  document.addEventListener("click", closePicker);
  submitOnEnter($("thread-input"), $("thread-composer"));
  $("thread-close").addEventListener("click", closeThread);
  // Enter in the dialog means OK (its first button, Cancel, would be the
  // browser's default).
  $("prompt-input").addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); $("prompt-form").requestSubmit($("prompt-ok")); }
  });
  $("new-channel").addEventListener("click", createChannel);
  $("new-dm").addEventListener("click", openDm);
  $("signout").addEventListener("click", () => { state.me = null; state.ws && state.ws.close(); showSignin(); });
  document.addEventListener("visibilitychange", () => {
    const c = state.channels.get(state.current);
    if (c && document.visibilityState === "visible") { c.unread = c.mentions = 0; markRead(c); renderSidebar(); }
    // Away after a minute out of sight; back as soon as the page is seen.
    clearTimeout(state.awayTimer);
    if (document.visibilityState === "hidden") {
      state.awayTimer = setTimeout(() => request({ type: "presence_set", status: "away" }).catch(() => {}), 60000);
    } else if (state.connected) {
      request({ type: "presence_set", status: "online" }).catch(() => {});
    }
  });
  const params = new URLSearchParams(location.search);
  const token = params.get("token") || localStorage.getItem("fanout.token");
  if (params.has("token")) history.replaceState(null, "", location.pathname);
  token ? start(token) : showSignin();
});
