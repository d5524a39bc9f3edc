// SPDX-License-Identifier: BSD-3-Clause
// The full emoji picker for reactions: every emoji of node-emoji's list
// (Format.all(), names from /vendor/emoji.json), searched by name, in a
// dialog opened from a message's quick picker ("More…"). Loaded after
// app.js and format.js; the choice goes to app.js's react().
"use strict";

const emojiPicker = { target: null };

function fillEmojiGrid() {
  const q = $("emoji-q").value.trim().toLowerCase().replace(/^:|:$/g, "");
  const grid = $("emoji-grid");
  const frag = document.createDocumentFragment();
  let n = 0;
  for (const [e, name] of Format.all()) {
    if (q && !name.includes(q)) continue;
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = e;
    b.title = `:${name}:`;
    b.setAttribute("aria-label", name.replace(/_/g, " "));
    b.addEventListener("click", () => {
      $("emoji-dialog").close();
      if (emojiPicker.target) react(emojiPicker.target, e, true);
    });
    frag.append(b);
    n++;
  }
  grid.replaceChildren(frag);
  $("emoji-none").hidden = n > 0;
}

async function openEmojiPicker(m) {
  emojiPicker.target = m;
  closePicker();
  $("emoji-q").value = "";
  await Format.ready;
  fillEmojiGrid();
  $("emoji-dialog").showModal();
  $("emoji-q").focus();
}

// Filtered as one types (a few milliseconds for the whole list).
$("emoji-q").addEventListener("input", fillEmojiGrid);
// Enter picks the first match rather than submitting the dialog.
$("emoji-q").addEventListener("keydown", (ev) => {
  if (ev.key !== "Enter") return;
  ev.preventDefault();
  $("emoji-grid").querySelector("button")?.click();
});
