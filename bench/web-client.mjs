// SPDX-License-Identifier: BSD-3-Clause
// web-client.mjs: the browser half of bench/web-client. In Debian's Chromium
// (headless, playwright-core from tests/browser), a reader opens a channel of
// many messages and scrolls to its top a screen at a time, asking for each
// older page with "Show older messages" as a reader would; every animation
// frame's interval is recorded from before the channel opens to the top.
// Then the same page sends 200 messages from its composer at once and times
// them until each shows as stored. Prints one JSON object.
//
//   node bench/web-client.mjs URL TOKEN CHANNEL_NAME
import { createRequire } from "node:module";

const require = createRequire(new URL("../tests/browser/package.json", import.meta.url));
const { chromium } = require("playwright-core");
const [url, token, channelName] = process.argv.slice(2);

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${url}/?token=${token}`);
  await page.locator("#status.ok").waitFor({ timeout: 20000 });
  await page.evaluate(() => {
    // the page's own script time in the two list changes, apart from layout
    window.benchScript = {};
    for (const name of ["showOlder", "updateNow", "renderSidebar", "messageElement"]) {
      const f = window[name];
      window.benchScript[name] = 0;
      window[name] = function (...args) {
        const t = performance.now();
        try { return f.apply(this, args); } finally { window.benchScript[name] += performance.now() - t; }
      };
    }
    window.benchFrames = [];
    let last = 0;
    const tick = (t) => {
      if (last) window.benchFrames.push(t - last);
      last = t;
      if (!window.benchStop) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  const opened = performance.now();
  await page.locator("#channels .item", { hasText: channelName }).click();
  await page.locator("#messages .message").nth(40).waitFor({ timeout: 20000 });
  const openMs = performance.now() - opened;
  const scroll = await page.evaluate(async () => {
    const list = document.getElementById("messages");
    const frame = () => new Promise((r) => requestAnimationFrame(r));
    const start = performance.now();
    let pages = 0, loads = 0;
    for (let guard = 0; guard < 100000; guard++) {
      if (list.scrollTop > 0) {
        list.scrollTop = Math.max(0, list.scrollTop - list.clientHeight);
        pages++;
        await frame();
        continue;
      }
      const button = list.querySelector(".older button");
      if (!button) break;
      // a page has come when the first message shown is another one (the
      // count alone does not say it: a windowed list drops as many below)
      const firstSeq = () => list.querySelector(".message")?.dataset.seq;
      const before = firstSeq();
      button.click();
      loads++;
      for (let i = 0; i < 600 && firstSeq() === before; i++) await frame();
      await frame();
    }
    window.benchStop = true;
    return { pages, loads, ms: performance.now() - start, shown: list.querySelectorAll(".message").length };
  });
  const frames = (await page.evaluate(() => window.benchFrames)).sort((a, b) => a - b);
  const q = (p) => frames[Math.min(frames.length - 1, Math.floor(frames.length * p))];
  const sendMs = await page.evaluate(async () => {
    const list = document.getElementById("messages");
    const input = document.getElementById("composer-input");
    const tag = Math.random().toString(36).slice(2, 8);
    const start = performance.now();
    for (let i = 0; i < 200; i++) { // as Enter in the composer does
      input.value = `burst ${tag} ${i}`;
      input.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true, cancelable: true }));
    }
    const stored = () => [...list.querySelectorAll(".message:not(.pending) .text")]
      .filter((t) => t.textContent.startsWith(`burst ${tag} `)).length;
    while (stored() < 200 && performance.now() - start < 60000)
      await new Promise((r) => setTimeout(r, 5));
    return stored() === 200 ? performance.now() - start : null;
  });
  console.log(JSON.stringify({
    open_ms: openMs, scroll_ms: scroll.ms, pages: scroll.pages, older_loads: scroll.loads,
    shown: scroll.shown, frames: frames.length, frame_p50_ms: q(0.5), frame_p95_ms: q(0.95),
    frame_p99_ms: q(0.99), frame_max_ms: frames[frames.length - 1],
    frames_over_18ms: frames.filter((f) => f > 18.4).length, // a 60 Hz frame missed
    frames_over_33ms: frames.filter((f) => f > 33.4).length, send_200_ms: sendMs,
    script_ms: await page.evaluate(() => window.benchScript),
  }));
} finally {
  await browser.close();
}
