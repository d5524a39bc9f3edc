// SPDX-License-Identifier: BSD-3-Clause
// Display names: a message shows its author's display name (the user name
// stays the identity: it is in the item's title, and in mentions), looked up
// from the user directory (GET /api/v1/users?names=) for the authors on
// screen, a batch at a time, and remembered for the page's life. Your own is
// set from the name at the top of the sidebar (POST /api/v1/users/me), and
// the dialog that opens a DM suggests people from the directory.
// Loaded after app.js, whose state and dialog it uses.
"use strict";

const displayNames = new Map(); // user name -> display name ("" when none)

function displayOf(user) {
  return displayNames.get(user) || user;
}

// The author's name in a message head, kept current by paintNames().
function whoElement(user) {
  const who = document.createElement("span");
  who.className = "who";
  who.dataset.user = user;
  paintWho(who);
  return who;
}

function paintWho(who) {
  const user = who.dataset.user, text = displayOf(user), title = displayNames.get(user) ? `@${user}` : "";
  if (who.textContent !== text) who.textContent = text; // untouched items are not laid out again
  if (who.title !== title) who.title = title;
}

function paintNames() {
  for (const who of document.querySelectorAll(".who[data-user]")) paintWho(who);
  if (state.me) $("me").textContent = displayOf(state.me.name);
}

// Asks for the display names of users not yet known, in batches that fit
// the server's query length (255 bytes).
async function lookupNames(users) {
  const unknown = users.filter((u) => !displayNames.has(u));
  if (!unknown.length) return;
  for (const u of unknown) displayNames.set(u, ""); // asked once
  while (unknown.length) {
    const batch = [];
    while (unknown.length && [...batch, unknown[0]].join(",").length <= 240) batch.push(unknown.shift());
    if (!batch.length) batch.push(unknown.shift()); // a name too long alone: asked, not found
    const r = await api("GET", `/api/v1/users?names=${encodeURIComponent(batch.join(","))}`).catch(() => null);
    if (r && r.ok) for (const u of r.body.users) displayNames.set(u.name, u.display_name);
  }
  paintNames();
}

// The directory's users whose name or display name starts with what is
// typed, offered under a field that has list="people".
let peopleTimer = 0;
function suggestPeople(input) {
  clearTimeout(peopleTimer);
  const q = input.value.trim();
  if (!q || input.getAttribute("list") !== "people") return;
  peopleTimer = setTimeout(async () => {
    const r = await api("GET", `/api/v1/users?q=${encodeURIComponent(q)}`).catch(() => null);
    if (!r || !r.ok || input.value.trim() !== q) return;
    $("people").replaceChildren(...r.body.users.filter((u) => u.name !== state.me.name).slice(0, 20).map((u) => {
      displayNames.set(u.name, u.display_name);
      const o = document.createElement("option");
      o.value = u.name;
      o.label = u.display_name || u.name;
      return o;
    }));
  }, 150);
}

document.addEventListener("DOMContentLoaded", () => {
  $("prompt-input").addEventListener("input", (e) => suggestPeople(e.target));
  $("me").addEventListener("click", () => {
    ask("Your display name", { value: displayNames.get(state.me.name) || "" }, async (a) => {
      const r = await api("POST", "/api/v1/users/me", { display_name: a.value });
      if (r.ok) {
        displayNames.set(state.me.name, r.body.user.display_name);
        paintNames();
      }
      return apiRefusal(r);
    });
  });
});
