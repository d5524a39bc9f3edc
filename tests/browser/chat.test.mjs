// SPDX-License-Identifier: BSD-3-Clause
// Browser test of the web client: Debian's chromium driven by playwright-core
// against a real fanoutd and PostgreSQL. Two users in two browser contexts
// chat in a channel and a DM, reply in a thread, and one reconnects while
// messages are sent: after the resume each shows exactly once.
// Screenshots go to FANOUT_ARTIFACTS. Run by meson with node's test runner.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, writeFileSync, openSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const SECRET = "browser-secret";
const ADMIN = "opsadmin"; // [auth] admins: the operator page is theirs
const ARTIFACTS = process.env.FANOUT_ARTIFACTS || join(tmpdir(), "fanout-browser");
mkdirSync(ARTIFACTS, { recursive: true });

const b64 = (s) => Buffer.from(s).toString("base64url");
function token(user) {
  const now = Math.floor(Date.now() / 1000);
  const head = b64(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64(JSON.stringify({ sub: user, iat: now, exp: now + 3600 }));
  const sig = createHmac("sha256", SECRET).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

let server, browser, url;
const pageErrors = [];

before(async () => {
  for (const name of ["FANOUT_BIN", "FANOUT_WEB_ROOT", "FANOUT_TEST_PG_DSN"])
    if (!process.env[name]) throw new Error(`${name} must be set (meson and deploy/test set them)`);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "fanout-browser-"));
  const config = join(dir, "fanout.ini");
  writeFileSync(config, `[server]\nport = ${port}\nservice_threads = 2\nweb_root = ${process.env.FANOUT_WEB_ROOT}\n[auth]\nadmins = ${ADMIN}\n[log]\nformat = json\n`);
  const log = openSync(join(ARTIFACTS, "fanoutd.log"), "w");
  server = spawn(process.env.FANOUT_BIN, ["-c", config], {
    env: { ...process.env, FANOUT_PG_DSN: process.env.FANOUT_TEST_PG_DSN, FANOUT_JWT_SECRET: SECRET },
    stdio: ["ignore", log, log],
  });
  url = `http://127.0.0.1:${port}`;
  let ready = false;
  for (let i = 0; i < 200 && !ready; i++) {
    try {
      ready = (await fetch(`${url}/readyz`)).ok;
    } catch { /* not yet */ }
    if (!ready) await new Promise((r) => setTimeout(r, 50));
  }
  if (!ready) throw new Error(`fanoutd did not become ready; see ${join(ARTIFACTS, "fanoutd.log")}`);
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  if (server) {
    const exited = new Promise((r) => server.once("exit", (code) => r(code)));
    server.kill("SIGTERM");
    assert.equal(await exited, 0, "fanoutd exits 0 on SIGTERM");
  }
});

async function signIn(user) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 760 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => pageErrors.push(`${user}: ${e.message}`));
  await page.goto(`${url}/?token=${token(user)}`);
  await page.locator("#status.ok").waitFor({ timeout: 10000 });
  await page.locator("#channel-title", { hasText: "general" }).waitFor();
  return page;
}

const messages = (page, text) => page.locator("#messages .message:not(.pending) .text", { hasText: text });

async function sendFrom(page, text, selector = "#composer-input") {
  await page.fill(selector, text);
  await page.press(selector, "Enter");
}

test("two users chat, DM, reply in a thread and survive a reconnect", async () => {
  const suffix = randomBytes(3).toString("hex");
  const alice = `alice${suffix}`, bob = `bob${suffix}`;
  const a = await signIn(alice), b = await signIn(bob);

  // A channel message, echoed locally then replaced by the stored one.
  await sendFrom(a, `hello from ${alice}`);
  await messages(b, `hello from ${alice}`).waitFor();
  await messages(a, `hello from ${alice}`).waitFor();
  assert.equal(await a.locator("#messages .message.pending").count(), 0);
  await a.screenshot({ path: join(ARTIFACTS, "1-channel-alice.png") });

  // Typing: alice types, bob sees it.
  await a.type("#composer-input", "typ");
  await b.locator("#typing", { hasText: `${alice} is typing` }).waitFor();
  // the message she was typing arrives: the typing line goes with it, not
  // seconds later
  await a.fill("#composer-input", "");
  await sendFrom(a, `typed by ${alice}`);
  await messages(b, `typed by ${alice}`).waitFor();
  assert.equal(await b.locator("#typing").textContent(), "", "no typing line after the message");

  // A reaction from bob shows on alice's screen, counted once.
  const bobsView = b.locator("#messages .message", { hasText: `hello from ${alice}` });
  await bobsView.hover();
  await bobsView.locator(".action", { hasText: "☺+" }).click();
  // A message arriving while bob picks re-renders his list; the picker stays.
  await b.locator(".picker").waitFor();
  await sendFrom(a, `while ${bob} picks`);
  await messages(b, `while ${bob} picks`).waitFor();
  assert.equal(await b.locator(".picker").count(), 1, "the reaction picker stays open");
  await b.locator(".picker button", { hasText: "🎉" }).click();
  const alicesView = a.locator("#messages .message", { hasText: `hello from ${alice}` });
  await alicesView.locator(".chip", { hasText: "🎉 1" }).waitFor();
  await bobsView.locator(".chip.mine", { hasText: "🎉 1" }).waitFor();

  // An edit by the author reaches bob, marked as edited.
  await alicesView.hover();
  await alicesView.locator(".action", { hasText: "Edit" }).click();
  await a.fill("#prompt-input", `hello from ${alice}, edited`);
  await a.click("#prompt-ok");
  await b.locator("#messages .message .text", { hasText: `hello from ${alice}, edited (edited)` }).waitFor();
  // Bob cannot edit alice's message: no Edit action is offered to him.
  await bobsView.hover();
  assert.equal(await bobsView.locator(".action", { hasText: "Edit" }).count(), 0);
  await b.screenshot({ path: join(ARTIFACTS, "1b-reaction-edit-bob.png") });

  // A thread reply from bob; alice sees the reply count and the reply.
  const parent = b.locator("#messages .message", { hasText: `hello from ${alice}` });
  await parent.hover(); // "Reply in thread" shows on hover
  await parent.locator(".replies").click();
  await b.locator("#thread").waitFor();
  await sendFrom(b, "a reply in the thread", "#thread-input");
  await b.locator("#thread-messages .message:not(.pending) .text", { hasText: "a reply in the thread" }).waitFor();
  const count = a.locator("#messages .message", { hasText: `hello from ${alice}` }).locator(".replies");
  await count.filter({ hasText: "1 reply" }).waitFor();
  await count.click();
  await a.locator("#thread-messages .text", { hasText: "a reply in the thread" }).waitFor();
  // A fresh page reads the parent and its reply from history: still 1 reply.
  const c = await signIn(`carol${suffix}`);
  await c.locator("#messages .message", { hasText: `hello from ${alice}` })
    .locator(".replies", { hasText: "1 reply" }).waitFor();
  await c.context().close();
  await b.screenshot({ path: join(ARTIFACTS, "2-thread-bob.png") });

  // A DM: alice opens it; bob's sidebar shows it with an unread badge.
  await a.click("#new-dm");
  await a.fill("#prompt-input", bob);
  await a.click("#prompt-ok");
  await a.locator("#channel-title", { hasText: bob }).waitFor();
  await sendFrom(a, "psst, just us");
  const dm = b.locator("#dms .item", { hasText: alice });
  await dm.locator(".badge", { hasText: "1" }).waitFor();
  await b.screenshot({ path: join(ARTIFACTS, "3-dm-badge-bob.png") });
  // Presence: bob sees alice online in his DM list.
  await dm.locator(".dot.online").waitFor();
  await dm.click();
  await messages(b, "psst, just us").waitFor();
  assert.equal(await b.locator("#dms .item .badge").count(), 0);

  // A reconnect: bob's connection drops and stays down while alice sends.
  await b.locator("#dms .item", { hasText: alice }).click();
  await b.evaluate(() => {
    window.__hold = true;
    const real = connect;
    // eslint-disable-next-line no-global-assign
    connect = function held() { if (window.__hold) setTimeout(held, 100); else real(); };
    state.ws.close();
  });
  await b.locator("#status", { hasText: "Reconnecting" }).waitFor();
  for (let i = 1; i <= 3; i++) await sendFrom(a, `while you were away ${i}`);
  for (let i = 1; i <= 3; i++) await messages(a, `while you were away ${i}`).waitFor();
  await b.evaluate(() => { window.__hold = false; });
  await b.locator("#status.ok").waitFor({ timeout: 10000 });
  for (let i = 1; i <= 3; i++) {
    await messages(b, `while you were away ${i}`).waitFor();
    assert.equal(await messages(b, `while you were away ${i}`).count(), 1, "shown exactly once");
  }
  assert.equal(await messages(b, "psst, just us").count(), 1);
  // A reconnect does not resurrect unread counts the user has already seen.
  assert.equal(await b.locator("#channels .item .badge").count(), 0);
  await b.screenshot({ path: join(ARTIFACTS, "4-after-reconnect-bob.png") });
  assert.deepEqual(pageErrors, [], "no script errors in the pages");
});

test("a bad token is refused and the sign-in form says so", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${url}/?token=not-a-token`);
  await page.locator("#signin-error", { hasText: "not accepted" }).waitFor({ timeout: 10000 });
  await page.screenshot({ path: join(ARTIFACTS, "5-signin-refused.png") });
  await context.close();
});

test("the operator page: admins only, live figures, closing a connection", async () => {
  const suffix = randomBytes(3).toString("hex");
  const dave = `dave${suffix}`;
  const ops = await signIn(ADMIN), d = await signIn(dave);
  // Not an admin: no button, and the server refuses the API itself.
  assert.equal(await d.locator("#ops-open").isVisible(), false);
  const refused = await d.evaluate(async () => (await api("GET", "/api/v1/admin/status")).status);
  assert.equal(refused, 403);
  // The admin opens the page: this node's figures and its connections.
  await ops.locator("#ops-open").click();
  await ops.locator("#ops").waitFor();
  await ops.locator("#ops-node", { hasText: "fanout" }).waitFor();
  const connections = ops.locator(".ops-card", { hasText: "Connections" }).locator(".ops-value");
  assert.ok(Number(await connections.textContent()) >= 2);
  await ops.locator(".ops-card", { hasText: "Commit latency" }).waitFor();
  // Live: messages sent now show as deliveries per second at the next reads.
  for (let i = 0; i < 5; i++) await sendFrom(d, `traffic ${i}`);
  const deliveries = ops.locator(".ops-card", { hasText: "Deliveries/s" }).locator(".ops-value");
  let rate = 0;
  for (let i = 0; i < 50 && !(rate > 0); i++) { // the page reads every 2 s
    rate = Number((await deliveries.textContent()).replace(/,/g, ""));
    if (!(rate > 0)) await new Promise((r) => setTimeout(r, 200));
  }
  assert.ok(rate > 0, "deliveries per second shown");
  await ops.screenshot({ path: join(ARTIFACTS, "6-operator-page.png") });
  // Closing dave's connection: his page reconnects by itself.
  const row = ops.locator("#ops-conn-body tr", { hasText: dave });
  await row.first().locator("button", { hasText: "Close" }).click();
  await d.locator("#status", { hasText: "Reconnecting" }).waitFor({ timeout: 10000 });
  await d.locator("#status.ok").waitFor({ timeout: 15000 });
  // Escape goes back to the chat.
  await ops.keyboard.press("Escape");
  await ops.locator("#chat-main").waitFor();
  assert.equal(await ops.locator("#ops").isVisible(), false);
  assert.deepEqual(pageErrors, [], "no script errors in the pages");
  await ops.context().close();
  await d.context().close();
});

test("a public channel nobody added you to is found in the browser and joined", async () => {
  const suffix = randomBytes(3).toString("hex");
  const erin = `erin${suffix}`, finn = `finn${suffix}`;
  const e = await signIn(erin), f = await signIn(finn);
  // erin creates a public channel; finn was never added to it
  const made = await e.evaluate(async (name) =>
    (await api("POST", "/api/v1/channels", { name })).status, `found-${suffix}`);
  assert.equal(made, 201);
  assert.equal(await f.locator("#channels .item", { hasText: `found-${suffix}` }).count(), 0);
  await f.click("#browse-channels");
  await f.fill("#browse-q", `FOUND-${suffix}`);
  const row = f.locator("#browse-list li", { hasText: `#found-${suffix}` });
  await row.locator(".count", { hasText: "1 member" }).waitFor();
  await f.screenshot({ path: join(ARTIFACTS, "7-channel-browser.png") });
  await row.locator("button", { hasText: "Join" }).click();
  await f.locator("#channel-title", { hasText: `found-${suffix}` }).waitFor();
  await f.locator("#channels .item", { hasText: `found-${suffix}` }).waitFor();
  // and now it is live for finn: erin's message arrives
  await e.locator("#channels .item", { hasText: `found-${suffix}` }).click();
  await sendFrom(e, `welcome ${finn}`);
  await messages(f, `welcome ${finn}`).waitFor();
  // erin adds finn to a private channel of hers; a name nobody has is
  // refused in the dialog, in words; finn, not its admin, is offered no add
  await e.evaluate(async (name) => {
    await api("POST", "/api/v1/channels", { name, kind: "private" });
    await refreshChannels();
  }, `hush-${suffix}`);
  await e.locator("#channels .item", { hasText: `hush-${suffix}` }).click();
  await e.click("#invite");
  await e.fill("#prompt-input", `ghost${suffix}`);
  await e.click("#prompt-ok");
  await e.locator("#prompt-error", { hasText: "no such user" }).waitFor();
  await e.screenshot({ path: join(ARTIFACTS, "8-invite-refused.png") });
  await e.fill("#prompt-input", finn);
  await e.click("#prompt-ok");
  await e.locator("#prompt").waitFor({ state: "hidden" });
  await f.locator("#channels .item", { hasText: `hush-${suffix}` }).click();
  await f.locator("#channel-title", { hasText: `hush-${suffix}` }).waitFor();
  assert.equal(await f.locator("#invite").isVisible(), false);
  // a DM with someone who does not exist is refused, in words
  await f.click("#new-dm");
  await f.fill("#prompt-input", `ghost${suffix}`);
  await f.click("#prompt-ok");
  await f.locator("#prompt-error", { hasText: "no such user" }).waitFor({ timeout: 10000 });
  assert.equal(await f.locator("#prompt").isVisible(), true, "the dialog stays to correct it");
  await f.click("#prompt button[value=cancel]");
  // a bad channel name is refused in the dialog, in words, and the footer
  // keeps saying what it said
  await f.click("#new-channel");
  await f.fill("#prompt-input", "no spaces allowed!");
  await f.click("#prompt-ok");
  await f.locator("#prompt-error", { hasText: "lowercase letters, digits" }).waitFor();
  assert.equal(await f.locator("#status").textContent(), "Connected");
  await f.screenshot({ path: join(ARTIFACTS, "10-bad-channel-name.png") });
  await f.fill("#prompt-input", `fixed-${suffix}`);
  await f.press("#prompt-input", "Enter"); // Enter is OK, not Cancel
  await f.locator("#channel-title", { hasText: `fixed-${suffix}` }).waitFor();
  assert.deepEqual(pageErrors, [], "no script errors in the pages");
  await e.context().close();
  await f.context().close();
});

test("search finds a message in my channels and opens it in context", async () => {
  const suffix = randomBytes(3).toString("hex");
  const gina = `gina${suffix}`, hank = `hank${suffix}`;
  const g = await signIn(gina), h = await signIn(hank);
  const needle = `needle${suffix}`;
  // gina's channel: a message with the word, deep under 60 others, and a
  // reply with it in a thread; hank's private channel has the word too
  const seqs = await g.evaluate(async ([name, needle]) => {
    const made = await api("POST", "/api/v1/channels", { name });
    const id = made.body.channel.id;
    const post = async (text, parent_seq) =>
      (await api("POST", `/api/v1/channels/${id}/messages`, parent_seq ? { text, parent_seq } : { text })).body.seq;
    const hit = await post(`the ${needle} is in the haystack`);
    for (let i = 0; i < 60; i++) await post(`hay ${i}`);
    const reply = await post(`a ${needle} in a thread`, hit + 1);
    await refreshChannels();
    return { id, hit, reply };
  }, [`srch-${suffix}`, needle]);
  await h.evaluate(async ([name, needle]) => {
    const made = await api("POST", "/api/v1/channels", { name, kind: "private" });
    await api("POST", `/api/v1/channels/${made.body.channel.id}/messages`, { text: `hank's ${needle}` });
  }, [`hankpriv-${suffix}`, needle]);
  // words are indexed a moment after the commit (docs/api.md): wait for them
  await g.evaluate(async (needle) => {
    for (let i = 0; i < 500; i++) {
      const r = await api("GET", `/api/v1/search?q=${needle}`);
      if (r.body && r.body.results && r.body.results.length >= 2) return;
      await new Promise((ok) => setTimeout(ok, 20));
    }
  }, needle);
  // gina searches from the sidebar: her two hits, the word marked; not hank's
  await g.fill("#search-q", needle);
  await g.press("#search-q", "Enter");
  await g.locator("#search-list .hit").nth(1).waitFor();
  assert.equal(await g.locator("#search-list .hit").count(), 2);
  assert.equal(await g.locator("#search-list .hit", { hasText: "hank's" }).count(), 0);
  assert.equal(await g.locator("#search-list mark", { hasText: needle }).count(), 2);
  await g.screenshot({ path: join(ARTIFACTS, "9-search.png") });
  // the channel message opens in its channel, scrolled to and highlighted
  await g.locator("#search-list .hit", { hasText: "haystack" }).click();
  await g.locator("#channel-title", { hasText: `srch-${suffix}` }).waitFor();
  const found = g.locator(`#messages .message.found[data-seq="${seqs.hit}"]`);
  await found.waitFor();
  // a run of gina's messages shows her name once: the first has a header,
  // the ones that follow within five minutes do not
  assert.equal(await found.evaluate((el) => el.classList.contains("cont")), false);
  assert.ok(await g.locator("#messages .message.cont").count() >= 40, "one header for the run");
  assert.equal(await g.locator("#messages .message.cont .head").first().isVisible(), false);
  assert.ok(await found.isVisible() && await found.evaluate((el) => {
    const r = el.getBoundingClientRect(), list = document.getElementById("messages").getBoundingClientRect();
    return r.top >= list.top && r.bottom <= list.bottom;
  }), "the hit is scrolled into view");
  // the reply opens its thread, highlighted there
  await g.fill("#search-q", `${needle} thread`);
  await g.press("#search-q", "Enter");
  await g.locator("#search-list .hit", { hasText: "in a thread" }).click();
  await g.locator(`#thread-messages .message.found[data-seq="${seqs.reply}"]`).waitFor();
  assert.equal(await g.locator("#thread").isVisible(), true);
  // a refusal shows in the dialog, in words
  await g.fill("#search-q", `${needle} before:2026-02-30`);
  await g.press("#search-q", "Enter");
  await g.locator("#search-error", { hasText: "take a day" }).waitFor();
  // gina's name in capitals is not a second gina: the sign-in says why
  const twin = await (await browser.newContext()).newPage();
  await twin.goto(`${url}/?token=${token(gina.toUpperCase())}`);
  await twin.locator("#signin-error", { hasText: "other case" }).waitFor();
  await twin.context().close();
  assert.deepEqual(pageErrors, [], "no script errors in the pages");
  await g.context().close();
  await h.context().close();
});

test("messages show a Markdown subset and :shortcodes:, and no payload runs or becomes markup", async () => {
  const suffix = randomBytes(3).toString("hex");
  const a = await signIn(`fmt${suffix}`), b = await signIn(`fmtb${suffix}`);
  const fmt = [
    `**bold${suffix}** _it_ ~~gone~~ \`code()\` :tada: [site](https://example.com/x)`,
    `\`\`\`\nint main(void) /* ${suffix} */\n{\n  return 0;\n}\n\`\`\``,
    `> quoted ${suffix}\n\n- one\n- two\n\n3. three\n4. four`,
  ];
  for (const t of fmt) await sendFrom(a, t);
  const first = messages(b, `bold${suffix}`);
  await first.waitFor();
  assert.equal(await first.locator("strong").textContent(), `bold${suffix}`);
  assert.equal(await first.locator("em").textContent(), "it");
  assert.equal(await first.locator("s").textContent(), "gone");
  assert.equal(await first.locator("code").textContent(), "code()");
  assert.match(await first.textContent(), /🎉/, ":tada: is shown as its emoji");
  const link = first.locator("a");
  assert.equal(await link.getAttribute("href"), "https://example.com/x");
  assert.equal(await link.getAttribute("rel"), "noopener noreferrer");
  assert.equal(await link.getAttribute("target"), "_blank");
  await messages(b, `int main(void) /* ${suffix} */`).locator("pre code", { hasText: "return 0;" }).waitFor();
  const lists = messages(b, `quoted ${suffix}`);
  await lists.locator("blockquote", { hasText: `quoted ${suffix}` }).waitFor();
  assert.equal(await lists.locator("ul li").count(), 2);
  assert.equal(await lists.locator("ol").getAttribute("start"), "3");
  // past 4,000 characters a text is shown as typed (a bound on the renderer)
  await sendFrom(a, `**long${suffix}** ${"word ".repeat(820)}`);
  const long = messages(b, `long${suffix}`);
  await long.waitFor();
  assert.equal(await long.locator("strong").count(), 0);
  assert.match(await long.textContent(), new RegExp(`\\*\\*long${suffix}\\*\\*`));
  // what was typed is what is stored: the source comes back on edit
  const mine = a.locator("#messages .message", { hasText: `bold${suffix}` });
  await mine.hover();
  await mine.locator(".action", { hasText: "Edit" }).click();
  assert.equal(await a.inputValue("#prompt-input"), fmt[0]);
  await a.click("#prompt-form button[value=cancel]");

  // The usual payloads, as messages and as a reaction: shown as text or as
  // harmless markup of the subset; none runs.
  const payloads = [
    `<script>window.__xss = 1</script> s${suffix}`,
    `<img src=x onerror="window.__xss = 2"> i${suffix}`,
    `[click](javascript:window.__xss=3) j${suffix}`,
    `[case](JaVaScRiPt:window.__xss=4) k${suffix}`,
    `<a href="javascript:window.__xss=5">raw</a> l${suffix}`,
    `![image](https://example.com/x.png) m${suffix}`,
    `<svg onload="window.__xss=6"></svg> n${suffix}`,
    `[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==) o${suffix}`,
    `<iframe src="javascript:window.__xss=7"></iframe> p${suffix}`,
    `[vb](vbscript:msgbox) q${suffix}`,
    `<details open ontoggle="window.__xss=8">x</details> r${suffix}`,
    `[rel](//example.com/protocol-relative) t${suffix}`,
    `javascript:window.__xss=9 u${suffix}`,
    `\`<b>inert</b>\` v${suffix}`,
  ];
  for (const t of payloads) await sendFrom(a, t);
  await messages(b, `v${suffix}`).waitFor();
  const msg = await a.locator("#messages .message", { hasText: `s${suffix}` }).getAttribute("data-seq");
  await a.evaluate((seq) => request({ type: "react", channel: state.current, seq: Number(seq),
                                      emoji: "<img/src=x/onerror=__xss=10>" }), msg);
  await b.locator("#messages .message", { hasText: `s${suffix}` })
    .locator(".chip", { hasText: "<img/src=x/onerror=__xss=10> 1" }).waitFor();
  await b.waitForTimeout(300); // an onerror or ontoggle would have fired by now
  for (const page of [a, b]) {
    assert.equal(await page.evaluate(() => window.__xss), undefined, "no payload ran");
    const found = await page.$$eval("#messages .text *", (els) => els.map((e) => ({
      tag: e.tagName, attrs: [...e.attributes].map((x) => `${x.name}=${x.value}`) })));
    const allowed = new Set(["P", "BR", "STRONG", "EM", "S", "CODE", "PRE", "BLOCKQUOTE", "UL",
                             "OL", "LI", "A", "SPAN"]);
    for (const { tag, attrs } of found) {
      assert.ok(allowed.has(tag), `no <${tag}> in a message`);
      for (const at of attrs) {
        assert.ok(/^(href=(https?:\/\/|mailto:)|rel=|target=_blank|start=\d+|class=(edited|plain)$)/.test(at),
                  `<${tag} ${at}> is not allowed`);
      }
    }
  }
  // each payload is there as the text it is, not dropped
  await messages(b, `<script>window.__xss = 1</script> s${suffix}`).waitFor();
  await messages(b, `<b>inert</b> v${suffix}`).locator("code").waitFor();
  assert.equal(await messages(b, `j${suffix}`).locator("a").count(), 0, "a javascript: link is text");
  assert.equal(await messages(b, `t${suffix}`).locator("a").count(), 0, "a protocol-relative link is text");
  await b.screenshot({ path: join(ARTIFACTS, "7-formatting-bob.png") });
  // Lines the renderer would leave as they are skip it; whatever the line,
  // the two ways give the same markup.
  const same = await b.evaluate(() => {
    const lines = ["plain words", "message 12: ship it today", "Ça va? Oui, très bien! 'quoted' \"too\".",
      "see example.com", "a.b", "1. first", "10. tenth", "a :tada: here", "time: 5:30", "wait...",
      "  indented", "mail x@example.com", "https://example.com/", "ends with a colon:", "", "#hash", "x_y_z",
      "2 + 2", "a; b, c? d!", "ab:cd", "**x**", "日本語のテキスト", "tab\there"];
    const html = (t, full) => { const d = document.createElement("div"); d.append(Format.render(t, full)); return d.innerHTML; };
    return lines.filter((t) => html(t, false) !== html(t, true)).map((t) => [t, html(t, false), html(t, true)]);
  });
  assert.deepEqual(same, [], "the short way and the renderer agree");

  // The full picker: searched by name, the choice becomes a reaction.
  const target = b.locator("#messages .message", { hasText: `bold${suffix}` });
  await target.hover();
  await target.locator(".action", { hasText: "☺+" }).click();
  await b.locator(".picker .more").click();
  await b.locator("#emoji-dialog[open]").waitFor();
  assert.ok(await b.locator("#emoji-grid button").count() > 1000, "the whole list is offered");
  await b.fill("#emoji-q", "rocket");
  assert.ok(await b.locator("#emoji-grid button").count() < 10, "the list is filtered by name");
  await b.locator("#emoji-grid button[title=':rocket:']").click();
  await target.locator(".chip.mine", { hasText: "🚀 1" }).waitFor();
  await a.locator("#messages .message", { hasText: `bold${suffix}` }).locator(".chip", { hasText: "🚀 1" }).waitFor();
  await a.context().close();
  await b.context().close();
  assert.deepEqual(pageErrors, [], "no script errors in the pages");
});

test("the list changes in place: older pages keep the reader's place, new messages do not pull them down", async () => {
  const suffix = randomBytes(3).toString("hex");
  const r = await signIn(`reader${suffix}`), w = await signIn(`writer${suffix}`);
  const name = `scroll-${suffix}`;
  const id = await w.evaluate(async (name) => {
    const made = await api("POST", "/api/v1/channels", { name });
    const id = made.body.channel.id;
    for (let i = 0; i < 120; i++)
      await api("POST", `/api/v1/channels/${id}/messages`, { text: `line ${i} of ${name}` });
    return id;
  }, name);
  await r.evaluate(async (id) => { await api("POST", `/api/v1/channels/${id}/join`); await refreshChannels(); }, id);
  await r.locator("#channels .item", { hasText: name }).click();
  await messages(r, `line 119 of ${name}`).waitFor();
  assert.equal(await messages(r, `line 69 of ${name}`).count(), 0, "one page of 50 at first");
  // mark every item: an item redrawn or replaced loses its mark
  const mark = () => r.evaluate(() => { for (const li of document.querySelectorAll("#messages .message")) li.__kept = true; });
  const kept = () => r.evaluate(() => [...document.querySelectorAll("#messages .message")].filter((li) => li.__kept).length);
  await mark();
  const before = await kept();
  // an older page goes above, the first message read stays where it was
  await r.evaluate(() => { document.getElementById("messages").scrollTop = 0; });
  const anchor = messages(r, `line 70 of ${name}`);
  const y0 = (await anchor.boundingBox()).y;
  await r.locator("#messages .older button").click();
  await messages(r, `line 20 of ${name}`).waitFor();
  const y1 = (await anchor.boundingBox()).y;
  assert.ok(Math.abs(y1 - y0) < 3, `the place is kept (${y0} then ${y1})`);
  assert.equal(await kept(), before, "the items shown before were not redrawn");
  // up in the history, a new message does not move the list; the button shows
  const top = await r.evaluate(() => document.getElementById("messages").scrollTop);
  await w.evaluate(async (id) => api("POST", `/api/v1/channels/${id}/messages`, { text: "fresh news" }), id);
  await messages(r, "fresh news").waitFor({ state: "attached" });
  assert.equal(await r.evaluate(() => document.getElementById("messages").scrollTop), top);
  await r.locator("#jump-latest:not([hidden])").waitFor();
  assert.equal(await kept(), before, "a new message is appended, nothing redrawn");
  // a reaction redraws its one message
  await w.evaluate(async (id) => {
    const seq = (await api("GET", `/api/v1/channels/${id}/messages?limit=1`)).body.messages[0].seq;
    await request({ type: "react", channel: id, seq, emoji: "👍" });
  }, id);
  await messages(r, "fresh news").locator("xpath=..").locator(".chip", { hasText: "👍 1" }).waitFor();
  assert.equal(await kept(), before);
  await r.click("#jump-latest");
  await r.locator("#jump-latest").waitFor({ state: "hidden" });
  assert.ok(await r.evaluate(() => {
    const l = document.getElementById("messages");
    return l.scrollHeight - l.scrollTop - l.clientHeight < 40;
  }), "at the bottom after the jump");
  assert.deepEqual(pageErrors, [], "no script errors in the pages");
  await r.context().close();
  await w.context().close();
});

test("a long channel: the page holds a window of it, older pages drop the bottom and scrolling down brings it back", async () => {
  const suffix = randomBytes(3).toString("hex");
  const r = await signIn(`win${suffix}`), w = await signIn(`wiw${suffix}`);
  const name = `window-${suffix}`;
  const line = (i) => `line ${String(i).padStart(3, "0")} of ${name}`;
  const id = await w.evaluate(async ([name, n]) => {
    const made = await api("POST", "/api/v1/channels", { name });
    const id = made.body.channel.id;
    for (let i = 0; i < n; i++)
      await api("POST", `/api/v1/channels/${id}/messages`, { text: `line ${String(i).padStart(3, "0")} of ${name}` });
    return id;
  }, [name, 130]);
  // a window of 100 here (300 in use) shows the same rules on a short channel
  await r.evaluate(async (id) => {
    listView.size = 100;
    await api("POST", `/api/v1/channels/${id}/join`);
    await refreshChannels();
  }, id);
  await r.locator("#channels .item", { hasText: name }).click();
  await messages(r, line(129)).waitFor();
  const texts = () => r.evaluate(() => [...document.querySelectorAll("#messages .message:not(.pending) .text")]
    .map((t) => t.textContent.trim().split(" ")[1]));
  const toTop = () => r.evaluate(() => { document.getElementById("messages").scrollTop = 0; });
  assert.equal((await texts()).length, 50, "one page of 50 at first");
  await toTop();
  await r.locator("#messages .older button").click();
  await messages(r, line(30)).waitFor();
  assert.equal((await texts()).length, 100);
  // the last older page: 130 in memory, the 100 from the top of it in the page
  await toTop();
  const anchor = messages(r, line(30));
  const y0 = (await anchor.boundingBox()).y;
  await r.locator("#messages .older button").click();
  await messages(r, line(0)).waitFor();
  assert.ok(Math.abs((await anchor.boundingBox()).y - y0) < 3, "the place is kept");
  let shown = await texts();
  assert.deepEqual([shown.length, shown[0], shown[99]], [100, "000", "099"]);
  assert.equal(await r.locator("#messages .older").count(), 0, "no older button at the first message");
  // up in the history, a new message waits in memory; the button shows
  await w.evaluate(async (id) => api("POST", `/api/v1/channels/${id}/messages`, { text: "fresh news" }), id);
  await r.locator("#jump-latest:not([hidden])").waitFor();
  assert.equal(await messages(r, "fresh news").count(), 0, "not drawn in a window that stops above it");
  // back down: the rest comes from memory, the top goes
  for (let i = 0; i < 20 && (await messages(r, "fresh news").count()) === 0; i++) {
    await r.evaluate(() => { const l = document.getElementById("messages"); l.scrollTop = l.scrollHeight; });
    await r.waitForTimeout(50);
  }
  await messages(r, "fresh news").waitFor();
  shown = await texts();
  assert.ok(shown.length <= 100, `at most the window (${shown.length})`);
  assert.equal(shown[shown.length - 2], "129");
  assert.deepEqual(shown.slice(0, -1), [...shown.slice(0, -1)].sort(), "in order, none twice");
  assert.ok(!shown.includes("000"), "the top went");
  // up again: the older page comes from memory, and the bottom goes again
  await toTop();
  await r.locator("#messages .older button").click();
  await messages(r, line(0)).waitFor();
  shown = await texts();
  assert.deepEqual([shown.length, shown[0], shown[99]], [100, "000", "099"]);
  // "Jump to latest" from the top of the history
  await r.click("#jump-latest");
  await messages(r, "fresh news").waitFor();
  assert.ok(await r.evaluate(() => {
    const l = document.getElementById("messages");
    return l.scrollHeight - l.scrollTop - l.clientHeight < 40;
  }), "at the bottom after the jump");
  assert.ok((await texts()).length <= 100);
  assert.deepEqual(pageErrors, [], "no script errors in the pages");
  await r.context().close();
  await w.context().close();
});

test("a phone, the dark, and the keyboard", async () => {
  const suffix = randomBytes(3).toString("hex");
  const user = `phone${suffix}`;
  const context = await browser.newContext({ viewport: { width: 390, height: 800 }, colorScheme: "dark",
                                             isMobile: true, hasTouch: true });
  const p = await context.newPage();
  p.on("pageerror", (e) => pageErrors.push(`${user}: ${e.message}`));
  await p.goto(`${url}/?token=${token(user)}`);
  await p.locator("#status.ok").waitFor({ state: "attached", timeout: 10000 });
  await p.locator("#channel-title", { hasText: "general" }).waitFor();
  // dark: the page and a message are light on dark
  const lum = (rgb) => { const [r, g, b] = rgb.match(/\d+/g).map(Number); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  await sendFrom(p, `from the phone ${suffix}`);
  const text = messages(p, `from the phone ${suffix}`);
  await text.waitFor();
  const bg = await p.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const fg = await text.evaluate((el) => getComputedStyle(el).color);
  assert.ok(lum(bg) < 60 && lum(fg) > 150, `dark background ${bg}, light text ${fg}`);
  // 390 px: the channel takes the width, the sidebar waits in a drawer
  assert.equal(await p.locator("#sidebar").isVisible(), false, "the sidebar is a closed drawer");
  assert.ok(await p.evaluate(() => document.documentElement.scrollWidth <= 390), "nothing wider than the screen");
  const box = await p.locator("#composer").boundingBox();
  assert.ok(box.x >= 0 && box.x + box.width <= 390 && box.width > 300, `the composer fits (${JSON.stringify(box)})`);
  await p.screenshot({ path: join(ARTIFACTS, "11-phone-dark.png") });
  await p.click("#menu");
  await p.locator("#sidebar").waitFor({ state: "visible" });
  await p.screenshot({ path: join(ARTIFACTS, "12-phone-drawer.png") });
  await p.locator("#channels .item", { hasText: "general" }).click();
  await p.locator("#sidebar").waitFor({ state: "hidden" });
  // Escape closes the thread pane
  // no hover on a phone: a tap on the message shows its actions
  const mine = p.locator("#messages .message", { hasText: `from the phone ${suffix}` });
  assert.equal(await mine.locator(".replies").isVisible(), false);
  await text.tap();
  await mine.locator(".actions").waitFor();
  await mine.locator(".replies").tap();
  await p.locator("#thread").waitFor();
  await p.keyboard.press("Escape");
  await p.locator("#thread").waitFor({ state: "hidden" });
  // Up in the empty composer edits my last message
  await p.focus("#composer-input");
  await p.keyboard.press("ArrowUp");
  assert.equal(await p.inputValue("#prompt-input"), `from the phone ${suffix}`);
  await p.keyboard.press("Escape");
  // Ctrl-K jumps to a channel by name; a wrong name is answered in place
  await p.keyboard.press("Control+k");
  await p.fill("#prompt-input", `nosuch${suffix}`);
  await p.keyboard.press("Enter");
  await p.locator("#prompt-error", { hasText: "No channel" }).waitFor();
  await p.fill("#prompt-input", "gen");
  await p.keyboard.press("Enter");
  await p.locator("#prompt").waitFor({ state: "hidden" });
  // Tab reaches the channel items; Enter opens one
  await context.setDefaultTimeout(10000);
  await p.click("#menu");
  await p.locator("#sidebar").waitFor({ state: "visible" });
  await p.focus("#new-channel");
  let reached = false;
  for (let i = 0; i < 6 && !reached; i++) {
    await p.keyboard.press("Tab");
    reached = await p.evaluate(() => document.activeElement?.classList.contains("item"));
  }
  assert.ok(reached, "a channel item takes the focus from the keyboard");
  await p.keyboard.press("Enter");
  await p.locator("#sidebar").waitFor({ state: "hidden" });
  assert.deepEqual(pageErrors, [], "no script errors in the pages");
  await context.close();
});

test("unread: the tab counts it, and the channel opens at a 'new messages' line", async () => {
  const suffix = randomBytes(3).toString("hex");
  const r = await signIn(`unr${suffix}`), w = await signIn(`unw${suffix}`);
  const name = `unread-${suffix}`;
  const id = await w.evaluate(async (name) => {
    const made = await api("POST", "/api/v1/channels", { name });
    const id = made.body.channel.id;
    await api("POST", `/api/v1/channels/${id}/messages`, { text: `read before ${name}` });
    return id;
  }, name);
  await r.evaluate(async (id) => { await api("POST", `/api/v1/channels/${id}/join`); await refreshChannels(); }, id);
  // what the reader saw counts at once in the page, however late the
  // server hears of it
  await r.evaluate(() => { state.readDelayMs = 20000; });
  await r.locator("#channels .item", { hasText: name }).click();
  await messages(r, `read before ${name}`).waitFor();
  // straight on to another channel: the cursor of the one left still moves,
  await r.locator("#channels .item", { hasText: "general" }).click();
  await w.evaluate(async (id) => {
    for (let i = 0; i < 3; i++) await api("POST", `/api/v1/channels/${id}/messages`, { text: `unread ${i}` });
  }, id);
  await r.locator("#channels .item", { hasText: name }).locator(".badge", { hasText: "3" }).waitFor();
  assert.equal(await r.title(), "(3) fanout");
  await r.locator("#channels .item", { hasText: name }).click();
  await messages(r, "unread 2").waitFor();
  const order = await r.evaluate(() => [...document.querySelectorAll("#messages > li")]
    .map((li) => li.classList.contains("divider") ? "|" : li.querySelector(".text")?.textContent.trim()));
  assert.deepEqual(order, [`read before ${name}`, "|", "unread 0", "unread 1", "unread 2"]);
  assert.equal(await r.title(), "fanout");
  await r.context().close();
  await w.context().close();
});

// Polls fn in the page until it is true (page.waitForFunction would need
// eval, which the page's CSP refuses).
async function until(page, fn, timeoutMs = 10000) {
  const end = Date.now() + timeoutMs;
  while (!(await page.evaluate(fn))) {
    if (Date.now() > end) throw new Error(`not true within ${timeoutMs} ms: ${fn}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("a mention: a badge, the tab's count, and desktop notifications while hidden", async () => {
  const suffix = randomBytes(3).toString("hex");
  const alice = `mna${suffix}`, bob = `mnb${suffix}`;
  const a = await signIn(alice), b = await signIn(bob);
  await b.context().grantPermissions(["notifications"], { origin: url });
  // Bob looks away: the page is hidden (as the browser says of a tab in the
  // background), and what the real Notification is asked to show is noted.
  await b.evaluate(() => {
    window.shown = [];
    window.Notification = new Proxy(window.Notification, {
      construct(Real, args) { window.shown.push([args[0], args[1].body]); return Reflect.construct(Real, args); },
    });
    Object.defineProperty(document, "visibilityState", { get: () => "hidden", configurable: true });
  });
  await a.evaluate(async (bob) => {
    const general = [...state.channels.values()].find((c) => c.name === "general").id;
    await api("POST", `/api/v1/channels/${general}/messages`, { text: `@${bob} can you look?` });
    await api("POST", `/api/v1/channels/${general}/messages`, { text: "no mention here" });
  }, bob);
  const item = b.locator("#channels .item", { hasText: "general" });
  await item.locator(".badge.mention", { hasText: "@1" }).waitFor();
  await until(b, () => window.shown.length >= 1);
  assert.deepEqual(await b.evaluate(() => window.shown), [[`${alice} in #general`, `@${bob} can you look?`]]);
  assert.match(await b.title(), /^\(@1 · \d+\) fanout$/);
  // a direct message notifies too
  await a.evaluate(async (bob) => {
    const dm = await api("POST", "/api/v1/dms", { user: bob });
    await api("POST", `/api/v1/channels/${dm.body.channel.id}/messages`, { text: "a quiet word" });
  }, bob);
  await until(b, () => window.shown.length >= 2);
  assert.deepEqual((await b.evaluate(() => window.shown))[1], [alice, "a quiet word"]);
  // back in view: general is read, its mention gone from the tab
  await b.evaluate(() => {
    delete document.visibilityState;
    document.dispatchEvent(new Event("visibilitychange"));
  });
  await item.locator(".badge").waitFor({ state: "detached" });
  assert.doesNotMatch(await b.title(), /@/);
  await a.context().close();
  await b.context().close();
});

// axe-core (npm, pinned by the lockfile) checks the page against WCAG 2 A and
// AA: roles and names, labels, contrast, focusable controls. It is read into
// the page by the driver (the page's CSP lets no inline script in).
async function accessibilityViolations(page) {
  await page.evaluate(AXE);
  return page.evaluate(async () => {
    const r = await axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } });
    return r.violations.map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`);
  });
}

test("accessibility: no WCAG 2.1 A/AA violations at 1280 and 390 px, light and dark", async () => {
  const suffix = randomBytes(3).toString("hex");
  for (const [width, scheme] of [[1280, "light"], [1280, "dark"], [390, "light"], [390, "dark"]]) {
    const user = `a11y${width}${scheme[0]}${suffix}`;
    const context = await browser.newContext({ viewport: { width, height: 800 }, colorScheme: scheme });
    const p = await context.newPage();
    p.on("pageerror", (e) => pageErrors.push(`${user}: ${e.message}`));
    await p.goto(`${url}/?token=${token(user)}`);
    await p.locator("#status.ok").waitFor({ state: "attached", timeout: 10000 });
    await p.locator("#channel-title", { hasText: "general" }).waitFor();
    await sendFrom(p, `**checked** by axe, \`code\` and a [link](https://example.com/) ${suffix}`);
    await messages(p, `checked`).last().waitFor();
    await p.screenshot({ path: join(ARTIFACTS, `a11y-${width}-${scheme}.png`) });
    assert.deepEqual(await accessibilityViolations(p), [], `${width} px, ${scheme}`);
    if (width < 600) { // the drawer open
      await p.click("#menu");
      await p.locator("#sidebar").waitFor({ state: "visible" });
      assert.deepEqual(await accessibilityViolations(p), [], `${width} px, ${scheme}, drawer`);
    }
    await context.close();
  }
});

test("a display name: set from the sidebar, shown on messages to others, the user name on hover", async () => {
  const suffix = randomBytes(3).toString("hex");
  const alice = `dna${suffix}`, bob = `dnb${suffix}`;
  const a = await signIn(alice), b = await signIn(bob);
  await b.click("#me");
  await b.fill("#prompt-input", `Robert ${suffix}`);
  await b.click("#prompt-ok");
  await b.locator("#prompt").waitFor({ state: "hidden" });
  assert.equal(await b.locator("#me").textContent(), `Robert ${suffix}`);
  await sendFrom(b, `signed ${suffix}`);
  const item = a.locator("#messages .message", { hasText: `signed ${suffix}` });
  await item.waitFor();
  const who = item.locator(".who");
  await who.filter({ hasText: `Robert ${suffix}` }).waitFor();
  assert.equal(await who.getAttribute("title"), `@${bob}`);
  // the DM dialog suggests bob by a word of his display name
  await a.click("#new-dm");
  await a.type("#prompt-input", suffix); // the second word of "Robert <suffix>"
  await a.locator(`#people option[value="${bob}"]`).waitFor({ state: "attached" });
  assert.equal(await a.locator(`#people option[value="${bob}"]`).getAttribute("label"), `Robert ${suffix}`);
  await a.keyboard.press("Escape");
  // a refusal shows in the dialog, which stays open
  await b.click("#me");
  await b.fill("#prompt-input", "x".repeat(65));
  await b.click("#prompt-ok");
  await b.locator("#prompt-error", { hasText: "64 characters" }).waitFor();
  await b.keyboard.press("Escape");
  await a.context().close();
  await b.context().close();
});

test("a refused message says why under the composer and keeps its text", async () => {
  const suffix = randomBytes(3).toString("hex");
  const p = await signIn(`ref${suffix}`);
  const name = `refuse-${suffix}`;
  await p.evaluate(async (name) => {
    const made = await api("POST", "/api/v1/channels", { name });
    await refreshChannels();
    openChannel(made.body.channel.id);
  }, name);
  await p.locator("#channel-title", { hasText: name }).waitFor();
  await sendFrom(p, `@here first ${suffix}`);
  await messages(p, `first ${suffix}`).waitFor();
  await sendFrom(p, `@here second ${suffix}`);
  // @channel and @here are one per user and channel per 30 s (the default)
  await p.locator("#composer-error", { hasText: "limited" }).waitFor();
  assert.equal(await p.inputValue("#composer-input"), `@here second ${suffix}`);
  assert.equal(await messages(p, `second ${suffix}`).count(), 0, "not shown as sent");
  await p.type("#composer-input", "!");
  await p.locator("#composer-error").waitFor({ state: "hidden" });
  await p.context().close();
});
