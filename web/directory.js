// SPDX-License-Identifier: BSD-3-Clause
// The channel browser of the web client: the public channels, searched by
// name, each with its member count and a Join button (docs/api.md,
// "Channels": GET /api/v1/channels?scope=public&q=). A channel nobody added
// you to is found here. And "Add people" to the open channel (any member of
// a public one, the admins of a private one: the server decides), its
// refusals shown in the dialog. Loaded after app.js, whose api(), ask(),
// apiRefusal(), refreshChannels(), openChannel() and flash() it uses.
"use strict";

const browse = { timer: null };

function browseItem(c) {
  const li = document.createElement("li");
  const name = document.createElement("span");
  name.textContent = `#${c.name} `;
  const count = document.createElement("span");
  count.className = "count";
  count.textContent = `${c.members} member${c.members === 1 ? "" : "s"}`;
  name.append(count);
  const join = document.createElement("button");
  join.type = "button";
  join.textContent = c.joined ? "Joined" : "Join";
  join.disabled = c.joined;
  join.setAttribute("aria-label", c.joined ? `Joined #${c.name}` : `Join #${c.name}`);
  join.addEventListener("click", async () => {
    const r = await api("POST", `/api/v1/channels/${c.id}/join`);
    if (!r.ok) return showBrowseError(r);
    $("browse").close();
    await refreshChannels();
    openChannel(c.id);
  });
  li.append(name, join);
  return li;
}

function showBrowseError(r) {
  $("browse-error").hidden = false;
  $("browse-error").textContent = r.body.error ? r.body.error.message : "The server did not answer; try again.";
}

async function loadBrowse() {
  const q = encodeURIComponent($("browse-q").value.trim());
  const r = await api("GET", `/api/v1/channels?scope=public&q=${q}`);
  if (!r.ok) return showBrowseError(r);
  $("browse-error").hidden = true;
  const items = r.body.channels.map(browseItem);
  if (!items.length) {
    const li = document.createElement("li");
    li.textContent = "No public channel has that in its name.";
    items.push(li);
  }
  $("browse-list").replaceChildren(...items);
}

// Offered where the server would allow it; it checks again.
document.addEventListener("fanout:channel", (e) => {
  const c = e.detail;
  $("invite").hidden = !(c.kind === "public" || (c.kind === "private" && c.role === "admin"));
});

function invite() {
  const c = state.channels.get(state.current);
  ask(`Add people to #${c ? label(c) : ""} (user name)`, {}, async (a) => {
    const r = await api("POST", `/api/v1/channels/${state.current}/members`, { user: a.value });
    if (r.ok) flash(r.body.added ? `${a.value} was added` : `${a.value} is already a member`);
    return apiRefusal(r);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  $("invite").addEventListener("click", invite);
  $("browse-channels").addEventListener("click", () => {
    $("browse-q").value = "";
    $("browse").showModal();
    loadBrowse();
  });
  $("browse-q").addEventListener("input", () => {
    clearTimeout(browse.timer);
    browse.timer = setTimeout(loadBrowse, 150);
  });
});
