// SPDX-License-Identifier: BSD-3-Clause
// Message search in the web client (docs/api.md, "Search": GET
// /api/v1/search): the box at the top of the sidebar, the hits in a dialog
// (channel, author, time, the text with the searched words marked), more
// by pages, refusals shown in place; a hit opens its message in context: the
// channel scrolled to it, or its thread, the message highlighted. Loaded
// after app.js, whose api(), request(), accept(), state, openChannel(),
// openThread() and renderMessages() it uses.
"use strict";

const search = { q: "", next: null };

// The plain words of the query, for marking them in the hits (a prefix
// match: the server stems, "deploy" finds "deploying").
function searchWords(q) {
  return q.split(/\s+/).filter((w) => w && !/^(in|from|before|after):/.test(w) && !w.startsWith("-"))
    .map((w) => w.replace(/["()]/g, "").toLowerCase()).filter((w) => w.length > 1 && w !== "or");
}

// text as nodes, each word of words found at a word's start in a <mark>.
function marked(text, words) {
  const out = [];
  if (!words.length) return [document.createTextNode(text)];
  const escaped = words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const re = new RegExp(`\\b(${escaped.join("|")})\\w*`, "gi");
  let at = 0;
  for (const m of text.matchAll(re)) {
    out.push(document.createTextNode(text.slice(at, m.index)));
    const mark = document.createElement("mark");
    mark.textContent = m[0];
    out.push(mark);
    at = m.index + m[0].length;
  }
  out.push(document.createTextNode(text.slice(at)));
  return out;
}

function hitItem(h, words) {
  const li = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "hit";
  const where = document.createElement("span");
  where.className = "where";
  const c = state.channels.get(h.channel);
  where.textContent = `${c ? (c.kind === "dm" ? label(c) : "#" + label(c)) : "#" + h.channel_name}` +
    ` · ${h.author} · ${formatTime(h.ts)}${h.parent_seq ? " · in a thread" : ""}`;
  const text = document.createElement("span");
  text.className = "text";
  text.append(...marked(h.text, words));
  button.append(where, text);
  button.addEventListener("click", () => openHit(h));
  li.append(button);
  return li;
}

function showSearchError(r) {
  $("search-error").hidden = false;
  $("search-error").textContent = r.body && r.body.error ? r.body.error.message
    : "The server did not answer; try again.";
}

async function runSearch(more) {
  const q = more ? search.q : $("search-q").value.trim();
  if (!q) return;
  const offset = more ? search.next : 0;
  const r = await api("GET", `/api/v1/search?q=${encodeURIComponent(q)}&offset=${offset}`);
  if (!$("search-dialog").open) $("search-dialog").showModal();
  if (!r.ok) return showSearchError(r);
  $("search-error").hidden = true;
  search.q = q;
  search.next = r.body.next_offset;
  $("search-title").textContent = `Messages matching “${q}”`;
  const words = searchWords(q);
  const items = r.body.results.map((h) => hitItem(h, words));
  if (!more && !items.length) {
    const li = document.createElement("li");
    li.className = "none";
    li.textContent = "Nothing found in your channels.";
    items.push(li);
  }
  if (more) $("search-list").append(...items);
  else $("search-list").replaceChildren(...items);
  $("search-more").hidden = search.next === null;
}

// The hit's message in the channel's state: read with the page around it
// when it is not there yet.
async function loadAround(c, seq) {
  if (c.messages.has(seq)) return;
  const page = await request({ type: "history", channel: c.id, before: seq + 25, limit: 50 });
  if (page.type === "history") for (const m of page.messages) accept(c, m);
  c.loaded = true;
  c.hasOlder = true;
}

function highlight(list, seq) {
  const li = list.querySelector(`.message[data-seq="${seq}"]`);
  if (!li) return;
  li.scrollIntoView({ block: "center" });
  li.classList.add("found");
  setTimeout(() => li.classList.remove("found"), 4000);
}

async function openHit(h) {
  $("search-dialog").close();
  if (!state.channels.has(h.channel)) await refreshChannels();
  const c = state.channels.get(h.channel);
  if (!c) return;
  if (state.current !== h.channel) await openChannel(h.channel);
  if (h.parent_seq) {
    await openThread(h.channel, h.parent_seq);
    return highlight($("thread-messages"), h.seq);
  }
  await loadAround(c, h.seq);
  renderMessages(h.seq);
  highlight($("messages"), h.seq);
}

document.addEventListener("DOMContentLoaded", () => {
  $("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    runSearch(false);
  });
  $("search-more").addEventListener("click", () => runSearch(true));
});
