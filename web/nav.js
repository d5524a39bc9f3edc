// SPDX-License-Identifier: BSD-3-Clause
// Getting around the web client: on a narrow screen the sidebar is a drawer
// (the ☰ button opens it, choosing a channel closes it) and a tap on a
// message shows its actions; from the keyboard,
// channels and DMs are reached with Tab and opened with Enter, Escape closes
// the reaction picker, the thread pane or the drawer, Up in an empty
// composer edits one's last message, and Ctrl-K (Cmd-K) jumps to a channel
// by name. Loaded after app.js and list.js, whose state and functions it uses.
"use strict";

function setDrawer(open) {
  $("app").classList.toggle("drawer", open);
  $("menu").setAttribute("aria-expanded", String(open));
}

// The channel (or DM) whose name best matches what was typed.
function channelByName(text) {
  const q = text.trim().replace(/^[#@]/, "").toLowerCase();
  const all = [...state.channels.values()];
  return all.find((c) => label(c).toLowerCase() === q) || all.find((c) => label(c).toLowerCase().startsWith(q))
    || all.find((c) => label(c).toLowerCase().includes(q));
}

function jumpToChannel() {
  ask("Jump to a channel", {}, (a) => {
    const c = a.value.trim() && channelByName(a.value);
    if (!c) return "No channel or DM of yours by that name.";
    openChannel(c.id);
    setDrawer(false);
    return null;
  });
}

function lastOwnMessage() {
  const c = state.channels.get(state.current);
  if (!c) return null;
  let last = null;
  for (const m of c.messages.values())
    if (m.author === state.me.name && topLevel(m) && !m.deleted && (!last || m.seq > last.seq)) last = m;
  return last;
}

// Without a pointer that hovers (a phone), a tap on a message shows its
// actions (react, reply, edit), which a mouse gets on hover.
function onMessageTap(e) {
  if (!matchMedia("(hover: none)").matches || e.target.closest("button, a")) return;
  const li = e.target.closest(".message");
  for (const other of document.querySelectorAll(".message.touched")) if (other !== li) other.classList.remove("touched");
  li?.classList.toggle("touched");
}

document.addEventListener("DOMContentLoaded", () => {
  $("messages").addEventListener("click", onMessageTap);
  $("thread-messages").addEventListener("click", onMessageTap);
  $("menu").addEventListener("click", () => setDrawer(!$("app").classList.contains("drawer")));
  $("scrim").addEventListener("click", () => setDrawer(false));
  for (const list of [$("channels"), $("dms")]) {
    list.addEventListener("click", () => setDrawer(false));
  }
  $("composer-input").addEventListener("keydown", (e) => {
    if (e.key !== "ArrowUp" || e.target.value !== "") return;
    const m = lastOwnMessage();
    if (!m) return;
    e.preventDefault();
    editMessage(m);
  });
  document.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "k" && !$("app").hidden) {
      e.preventDefault();
      if (!document.querySelector("dialog[open]")) jumpToChannel();
      return;
    }
    if (e.key !== "Escape" || document.querySelector("dialog[open]")) return; // a dialog closes itself
    if (document.querySelector(".picker")) closePicker();
    else if (!$("thread").hidden) closeThread();
    else if ($("app").classList.contains("drawer")) setDrawer(false);
  });
});
