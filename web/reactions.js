// SPDX-License-Identifier: BSD-3-Clause
// Reactions on a message: its chips (count, and whether one is ours), the
// quick picker under its actions, react() to add or take one back, and a
// fresh read of a message's reactions after a react or unreact event.
// emoji.js opens the full picker from the quick one's "More…".
"use strict";

const EMOJI = ["👍", "❤️", "😂", "🎉", "👀", "✅"];

// Reads the message's reactions again (once per message however many
// events came within 50 ms) and redraws it.
const reactionRefresh = new Map();
function refreshReactions(c, seq) {
  const key = `${c.id}:${seq}`;
  if (reactionRefresh.has(key)) return;
  reactionRefresh.set(key, setTimeout(async () => {
    reactionRefresh.delete(key);
    try {
      const page = await request({ type: "history", channel: c.id, thread: seq, limit: 1 });
      const fresh = page.messages && page.messages[0];
      const target = c.messages.get(seq);
      if (fresh && target && fresh.seq === seq) {
        target.reactions = fresh.reactions || [];
        rerender(c, seq);
      }
    } catch { /* offline: the resume brings the events again */ }
  }, 50));
}

function reactionBar(m) {
  const bar = document.createElement("div");
  bar.className = "reactions";
  for (const r of m.reactions || []) {
    const chip = document.createElement("button");
    chip.className = "chip" + (r.me ? " mine" : "");
    chip.textContent = `${Format.emojify(r.emoji)} ${r.count}`;
    chip.title = r.me ? "Remove your reaction" : "React";
    chip.addEventListener("click", () => react(m, r.emoji, !r.me));
    bar.append(chip);
  }
  return bar;
}

function closePicker() {
  state.picker = null;
  document.querySelectorAll(".picker").forEach((p) => p.remove());
}

function picker(box, m) {
  closePicker();
  state.picker = `${m.channel}:${m.seq}`;
  const p = document.createElement("div");
  p.className = "picker";
  for (const e of EMOJI) {
    const b = document.createElement("button");
    b.textContent = e;
    b.addEventListener("click", () => { closePicker(); react(m, e, true); });
    p.append(b);
  }
  const more = document.createElement("button");
  more.className = "more";
  more.textContent = "More…";
  more.title = "Every emoji, searched by name";
  more.addEventListener("click", (e) => { e.stopPropagation(); openEmojiPicker(m); });
  p.append(more);
  box.append(p);
}

async function react(m, emoji, add) {
  const r = await request({ type: add ? "react" : "unreact", channel: m.channel, seq: m.seq, emoji }).catch(() => null);
  if (r && r.type === "error") itemError(m, r.message);
}
