// SPDX-License-Identifier: BSD-3-Clause
// The open channel's message list. Drawn whole only when a channel opens
// (or a search hit needs its place); after that it changes in place: a new
// message is appended, an edit, delete or reaction redraws its one item, an
// older page is put above with the reader's place kept, and a message that
// arrives while the reader is up in the history does not pull them down:
// "Jump to latest" offers the way back. Consecutive messages of one author
// within five minutes share one header.
//
// The page holds a window of at most listView.size messages, however many
// the channel has in memory: an older page put above takes as many off the
// bottom, and scrolling back down brings them again from memory (taking
// as many off the top), so that the browser lays out and hit-tests a few
// hundred items, not ten thousand. While the window does not reach the
// latest message (list.dataset.tail is "cut"), new messages wait in memory
// and "Jump to latest" shows. Uses app.js's state, accept() and
// messageElement().
"use strict";

const FOLLOW_PX = 40; // this close to the bottom, the list follows new messages
const PAGE = 50; // messages per older page, from the server or from memory
const listView = { size: 300, placed: null }; // the most message items in the page

function continues(prev, m) {
  return prev && prev.author === m.author && Date.parse(m.ts) - Date.parse(prev.ts) < 5 * 60000;
}

const topLevel = (m) => !m.parent_seq && (m.kind || "message") === "message";

// c's channel messages (not replies or events) in seq order.
const sortedTop = (c) => [...c.messages.values()].filter(topLevel).sort((a, b) => a.seq - b.seq);

function atBottom(list) {
  return list.scrollHeight - list.scrollTop - list.clientHeight < FOLLOW_PX;
}

function olderButton(c) {
  const more = document.createElement("li");
  more.className = "older";
  const button = document.createElement("button");
  button.className = "link";
  button.textContent = "Show older messages";
  button.addEventListener("click", () => showOlder(c));
  more.append(button);
  return more;
}

// The items of msgs (sorted), after prev (the message before them, or
// null), which shares a header with the first only if it is on screen
// (prevShown); the "new messages" line before the first of c's messages
// past its divider.
function items(c, msgs, prev, prevShown = true) {
  const frag = document.createDocumentFragment();
  for (const m of msgs) {
    const li = messageElement(m);
    if (startsUnread(c, prev, m)) {
      frag.append(dividerItem());
      prevShown = false;
    }
    if (prevShown && continues(prev, m)) li.classList.add("cont");
    frag.append(li);
    prev = m;
    prevShown = true;
  }
  return frag;
}

// Whether m, after prev (null: the first in memory), is the first unread.
// At the top of what is in memory that is known only once the history down
// to the divider is loaded (pages are contiguous in seq).
function startsUnread(c, prev, m) {
  const d = c.divider;
  if (d === null || d === undefined || m.seq <= d || m.author === state.me.name) return false;
  if (prev) return prev.seq <= d;
  return !c.hasOlder || Math.min(...c.messages.keys()) <= d + 1;
}

function dividerItem() {
  const li = document.createElement("li");
  li.className = "divider";
  // an item of the list like the messages (a role of its own would break the
  // list for assistive technology: axe's "list" rule)
  li.textContent = "New messages";
  return li;
}

// The stored items on screen, in order.
const shown = (list) => list.querySelectorAll(".message:not(.pending)");

// Draws the open channel: the window of the latest messages, or the one
// around message seq `around` (a search hit). A long unread run opens at
// its start, not its end.
function renderMessages(around = null) {
  const c = state.channels.get(state.current);
  const list = $("messages");
  list.replaceChildren();
  showJump(false);
  if (!c) return;
  list.dataset.channel = c.id;
  const top = sortedTop(c);
  let end = top.length;
  if (around !== null) {
    const at = top.findIndex((m) => m.seq >= around);
    if (at >= 0) end = Math.min(top.length, Math.max(at + listView.size / 2, listView.size));
  }
  const start = Math.max(0, end - listView.size);
  list.dataset.tail = end < top.length ? "cut" : "";
  if (start > 0 || (c.loaded && c.hasOlder)) list.append(olderButton(c));
  watchPresence();
  list.append(items(c, top.slice(start, end), top[start - 1] || null, false));
  if (end === top.length)
    for (const p of c.pending.values()) if (!p.parent_seq) list.append(messageElement(p, { pending: true }));
  list.scrollTop = list.scrollHeight;
  const divider = list.querySelector(".divider");
  const at = divider ? divider.getBoundingClientRect().top - list.getBoundingClientRect().top + list.scrollTop : 0;
  if (divider && at < list.scrollTop) list.scrollTop = at;
  if (end < top.length) showJump(true);
}

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
// bottom or sent it; otherwise "Jump to latest" shows, as it does while
// the window is up in the history (then nothing is drawn until they come
// back, unless they send: that brings the latest).
function updateNow(c) {
  const list = $("messages");
  if (list.dataset.channel !== String(c.id)) return renderMessages();
  const drawn = shown(list);
  const first = drawn.length ? c.messages.get(Number(drawn[0].dataset.seq)) : null;
  const last = drawn.length ? c.messages.get(Number(drawn[drawn.length - 1].dataset.seq)) : null;
  const all = [...c.messages.values()].filter(topLevel);
  const fresh = all.filter((m) => !last || m.seq > last.seq).sort((a, b) => a.seq - b.seq);
  // a message inside the window but not on screen: draw it all again
  if (first && all.filter((m) => m.seq >= first.seq && m.seq <= last.seq).length !== drawn.length)
    return renderMessages();
  if (list.dataset.tail === "cut") {
    if (c.pending.size > 0) return jumpToLatest();
    if (fresh.length) showJump(true);
    return;
  }
  const follow = atBottom(list);
  const echoes = pendingItems(list);
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
  if (shown(list).length > listView.size + PAGE && (follow || mine)) trimTop(list, shown(list).length - listView.size);
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
  const page = await request({ type: "history", channel: c.id, before: oldest, limit: PAGE });
  if (page.type !== "history") return;
  for (const m of page.messages) accept(c, m);
  c.loaded = true;
  c.hasOlder = page.has_more;
  if (c.id === state.current) showOlder(c, false);
}

// Keeps item li where it is on screen while fn changes the list around it
// (by its bottom edge: its header may come or go as its neighbour does).
function keepPlace(list, li, fn) {
  const y = li.getBoundingClientRect().bottom;
  fn();
  list.scrollTop += li.getBoundingClientRect().bottom - y;
  listView.placed = list.scrollTop; // the scroll event this causes is not the reader's
}

// Puts up to a page of the messages before the first one shown above it,
// the reader's place kept, from memory or else from the server (fetch),
// and takes as many off the bottom of the window.
function showOlder(c, fetch = true) {
  const list = $("messages");
  const drawn = shown(list);
  if (list.dataset.channel !== String(c.id) || !drawn.length) return renderMessages();
  const firstLi = drawn[0];
  const first = c.messages.get(Number(firstLi.dataset.seq));
  const older = sortedTop(c).filter((m) => m.seq < first.seq);
  if (!older.length) {
    if (fetch && c.hasOlder) loadOlder(c);
    else if (!c.hasOlder) list.querySelector(".older")?.remove();
    return;
  }
  const block = older.slice(-PAGE);
  const prev = older[older.length - block.length - 1] || null;
  const lastOlder = block[block.length - 1];
  keepPlace(list, firstLi, () => {
    const before = firstLi.previousElementSibling;
    (before && before.classList.contains("divider") ? before : firstLi).before(items(c, block, prev, false));
    if (!list.querySelector(".divider") && startsUnread(c, lastOlder, first)) firstLi.before(dividerItem());
    firstLi.classList.toggle("cont", firstLi.previousElementSibling?.classList.contains("message") === true
      && continues(lastOlder, first));
    const button = list.querySelector(".older");
    if (!c.hasOlder && older.length === block.length) button?.remove();
    else if (!button) list.prepend(olderButton(c));
    else list.prepend(button);
    trimBottom(list, shown(list).length - listView.size);
  });
  watchPresence();
}

// Takes n stored items (and what follows them) off the bottom: the window
// no longer reaches the latest message.
function trimBottom(list, n) {
  if (n <= 0) return;
  const drawn = shown(list);
  const keep = drawn[drawn.length - n - 1];
  while (keep.nextElementSibling) keep.nextElementSibling.remove();
  list.dataset.tail = "cut";
}

// Takes n stored items off the top (a "new messages" line just above the
// first one kept stays: it belongs to it), the reader's place kept.
function trimTop(list, n) {
  if (n <= 0) return;
  const drawn = shown(list);
  const keep = drawn[n];
  keepPlace(list, keep, () => {
    let li = keep.previousElementSibling;
    if (li && li.classList.contains("divider")) li = li.previousElementSibling;
    while (li && !li.classList.contains("older")) {
      const prev = li.previousElementSibling;
      li.remove();
      li = prev;
    }
    keep.classList.remove("cont");
    if (!list.querySelector(".older")) list.prepend(olderButton(state.channels.get(state.current)));
  });
}

// The reader came back down in a cut window: the next page from memory
// below, as many off the top; at the latest, the echoes too.
function showNewer(c) {
  const list = $("messages");
  const drawn = shown(list);
  if (!drawn.length) return;
  const lastLi = drawn[drawn.length - 1];
  const last = c.messages.get(Number(lastLi.dataset.seq));
  const newer = sortedTop(c).filter((m) => m.seq > last.seq);
  const block = newer.slice(0, PAGE);
  keepPlace(list, lastLi, () => {
    list.append(items(c, block, last));
    if (block.length === newer.length) {
      list.dataset.tail = "";
      for (const p of c.pending.values()) if (!p.parent_seq) list.append(messageElement(p, { pending: true }));
    }
    trimTop(list, shown(list).length - listView.size);
  });
  watchPresence();
}

function jumpToLatest() {
  const list = $("messages");
  if (list.dataset.tail === "cut") renderMessages();
  list.scrollTop = list.scrollHeight;
  showJump(false);
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
  list.addEventListener("scroll", () => {
    const c = state.channels.get(state.current);
    const own = list.scrollTop === listView.placed;
    listView.placed = null;
    if (c && !own && list.dataset.tail === "cut" && list.scrollHeight - list.scrollTop - list.clientHeight < list.clientHeight)
      showNewer(c);
    if (list.dataset.tail !== "cut" && atBottom(list)) showJump(false);
  });
  $("jump-latest").addEventListener("click", jumpToLatest);
});
