// SPDX-License-Identifier: BSD-3-Clause
// The open channel's message list. Drawn whole only when a channel opens
// (or a search hit needs its page); after that it changes in place: a new
// message is appended, an edit, delete or reaction redraws its one item, an
// older page is put above with the reader's place kept, and a message that
// arrives while the reader is up in the history does not pull them down:
// "Jump to latest" offers the way back. Consecutive messages of one author
// within five minutes share one header. Uses app.js's state, accept() and
// messageElement().
"use strict";

const FOLLOW_PX = 40; // this close to the bottom, the list follows new messages

function continues(prev, m) {
  return prev && prev.author === m.author && Date.parse(m.ts) - Date.parse(prev.ts) < 5 * 60000;
}

const topLevel = (m) => !m.parent_seq && (m.kind || "message") === "message";

function atBottom(list) {
  return list.scrollHeight - list.scrollTop - list.clientHeight < FOLLOW_PX;
}

function olderButton(c) {
  const more = document.createElement("li");
  more.className = "older";
  const button = document.createElement("button");
  button.className = "link";
  button.textContent = "Show older messages";
  button.addEventListener("click", () => loadOlder(c));
  more.append(button);
  return more;
}

// The items of msgs (sorted), headers shared after prev; the "new
// messages" line before the first of c's messages past its divider.
function items(c, msgs, prev) {
  const frag = document.createDocumentFragment();
  for (const m of msgs) {
    const li = messageElement(m);
    if (startsUnread(c, prev, m)) {
      frag.append(dividerItem());
      prev = null;
    }
    if (continues(prev, m)) li.classList.add("cont");
    frag.append(li);
    prev = m;
  }
  return frag;
}

// Whether m, after prev (null: the first drawn), is the first unread. At
// the top of what is drawn that is known only once the history down to the
// divider is loaded (pages are contiguous in seq).
function startsUnread(c, prev, m) {
  const d = c.divider;
  if (d === null || d === undefined || m.seq <= d || m.author === state.me.name) return false;
  if (prev) return prev.seq <= d;
  return !c.hasOlder || Math.min(...c.messages.keys()) <= d + 1;
}

function dividerItem() {
  const li = document.createElement("li");
  li.className = "divider";
  li.setAttribute("role", "separator");
  li.textContent = "New messages";
  return li;
}

function renderMessages() {
  const c = state.channels.get(state.current);
  const list = $("messages");
  list.replaceChildren();
  showJump(false);
  if (!c) return;
  list.dataset.channel = c.id;
  if (c.loaded && c.hasOlder) list.append(olderButton(c));
  const top = [...c.messages.values()].filter(topLevel).sort((a, b) => a.seq - b.seq);
  watchPresence();
  list.append(items(c, top, null));
  for (const p of c.pending.values()) if (!p.parent_seq) list.append(messageElement(p, { pending: true }));
  list.scrollTop = list.scrollHeight;
  // a long unread run opens at its start, not its end
  const divider = list.querySelector(".divider");
  const at = divider ? divider.getBoundingClientRect().top - list.getBoundingClientRect().top + list.scrollTop : 0;
  if (divider && at < list.scrollTop) list.scrollTop = at;
}

// The stored items on screen, in order.
const shown = (list) => list.querySelectorAll(".message:not(.pending)");

// Brings the list up to date with c after live messages or a send, at most
// once an animation frame: a burst of sends and their acks (or a busy
// channel) becomes one change of the list, not one per message.
let updateQueued = false;
function updateMessages(c) {
  if (c.id !== state.current || updateQueued) return;
  updateQueued = true;
  requestAnimationFrame(() => {
    updateQueued = false;
    const now = state.channels.get(state.current);
    if (now) updateNow(now);
  });
}

// The echoes at the end of the list (they always follow the stored items).
function pendingItems(list) {
  const out = [];
  for (let li = list.lastElementChild; li && li.classList.contains("pending"); li = li.previousElementSibling)
    out.unshift(li);
  return out;
}

// New stored messages go in above the echoes, an echo whose message came
// leaves, new echoes go at the end. Followed when the reader was at the
// bottom or sent it; otherwise "Jump to latest" shows.
function updateNow(c) {
  const list = $("messages");
  if (list.dataset.channel !== String(c.id)) return renderMessages();
  const follow = atBottom(list);
  const echoes = pendingItems(list);
  let lastLi = echoes.length ? echoes[0].previousElementSibling : list.lastElementChild;
  while (lastLi && !lastLi.classList.contains("message")) lastLi = lastLi.previousElementSibling;
  const last = lastLi ? c.messages.get(Number(lastLi.dataset.seq)) : null;
  const fresh = [...c.messages.values()].filter((m) => topLevel(m) && (!last || m.seq > last.seq))
    .sort((a, b) => a.seq - b.seq);
  // a message below the last one shown but not on screen: draw it all again
  if (shown(list).length + fresh.length < [...c.messages.values()].filter(topLevel).length) return renderMessages();
  const showing = new Set();
  for (const li of echoes) {
    if (c.pending.has(li.dataset.clientMsgId)) showing.add(li.dataset.clientMsgId);
    else li.remove();
  }
  const firstEcho = echoes.find((li) => li.isConnected);
  if (firstEcho) firstEcho.before(items(c, fresh, last)); else list.append(items(c, fresh, last));
  for (const p of c.pending.values())
    if (!p.parent_seq && !showing.has(p.client_msg_id)) list.append(messageElement(p, { pending: true }));
  watchPresence();
  const mine = fresh.some((m) => m.author === state.me.name) || c.pending.size > 0;
  if (follow || mine) list.scrollTop = list.scrollHeight;
  else if (fresh.length) showJump(true);
}

// Redraws the item of one message (an edit, a delete, a reaction).
function updateMessage(c, seq) {
  const list = $("messages");
  if (c.id !== state.current || list.dataset.channel !== String(c.id)) return;
  const old = list.querySelector(`.message[data-seq="${seq}"]`);
  const m = c.messages.get(seq);
  if (!old || !m) return;
  const li = messageElement(m);
  li.classList.toggle("cont", old.classList.contains("cont"));
  old.replaceWith(li);
}

async function loadOlder(c) {
  const oldest = Math.min(...[...c.messages.keys()], c.lastSeq + 1);
  const page = await request({ type: "history", channel: c.id, before: oldest, limit: 50 });
  if (page.type !== "history") return;
  for (const m of page.messages) accept(c, m);
  c.loaded = true;
  c.hasOlder = page.has_more;
  if (c.id === state.current) showOlder(c);
}

// Puts the messages above the first one shown, the reader's place kept.
function showOlder(c) {
  const list = $("messages");
  let firstLi = list.firstElementChild; // the first stored item, found from the top
  while (firstLi && !(firstLi.classList.contains("message") && !firstLi.classList.contains("pending")))
    firstLi = firstLi.nextElementSibling;
  if (list.dataset.channel !== String(c.id) || !firstLi) return renderMessages();
  const first = c.messages.get(Number(firstLi.dataset.seq));
  const older = [...c.messages.values()].filter((m) => topLevel(m) && m.seq < first.seq)
    .sort((a, b) => a.seq - b.seq);
  const fromBottom = list.scrollHeight - list.scrollTop;
  const before = firstLi.previousElementSibling;
  const lastOlder = older[older.length - 1];
  (before && before.classList.contains("divider") ? before : firstLi).before(items(c, older, null));
  if (!list.querySelector(".divider") && lastOlder && startsUnread(c, lastOlder, first)) firstLi.before(dividerItem());
  firstLi.classList.toggle("cont", firstLi.previousElementSibling?.classList.contains("message") === true
    && continues(lastOlder, first));
  const button = list.querySelector(".older");
  if (!c.hasOlder) button?.remove();
  else if (!button) list.prepend(olderButton(c));
  else list.prepend(button);
  list.scrollTop = list.scrollHeight - fromBottom;
  watchPresence();
}

function updateReplyCount(c, parentSeq) {
  const li = $("messages").querySelector(`li[data-seq="${parentSeq}"] .replies`);
  const parent = c.messages.get(parentSeq);
  if (li && parent) {
    li.textContent = `${parent.reply_count} ${parent.reply_count === 1 ? "reply" : "replies"}`;
    li.classList.remove("none");
  }
}

function showJump(on) {
  $("jump-latest").hidden = !on;
}

document.addEventListener("DOMContentLoaded", () => {
  const list = $("messages");
  list.addEventListener("scroll", () => { if (atBottom(list)) showJump(false); });
  $("jump-latest").addEventListener("click", () => {
    list.scrollTop = list.scrollHeight;
    showJump(false);
  });
});
