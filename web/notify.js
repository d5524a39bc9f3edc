// SPDX-License-Identifier: BSD-3-Clause
// Desktop notifications: while the page is hidden, a mention of the user
// (or of @channel/@here) and a direct message raise a browser notification;
// clicking it brings the page back on that channel. Permission is asked
// once, at the user's first click in the page (browsers allow the question
// only then), and the answer is the browser's to keep. app.js sends each
// notice as a "fanout:notice" event with the channel and the frame.
"use strict";

document.addEventListener("click", () => {
  if (!("Notification" in window) || Notification.permission !== "default") return;
  if (localStorage.getItem("fanout.notify-asked")) return;
  localStorage.setItem("fanout.notify-asked", "1");
  Notification.requestPermission().catch(() => {});
}, { capture: true });

document.addEventListener("fanout:notice", (e) => {
  const { c, m } = e.detail;
  if (document.visibilityState !== "hidden") return;
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  const where = c.kind === "dm" ? "" : ` in #${label(c)}`;
  const n = new Notification(`${m.author}${where}`, {
    body: (m.text || "").slice(0, 200),
    tag: `${m.channel}:${m.seq}`, // a mention in a DM is one notification, not two
  });
  n.addEventListener("click", () => { window.focus(); openChannel(c.id); n.close(); });
});
