// SPDX-License-Identifier: BSD-3-Clause
// The operator page of the web client: for the users named in [auth] admins
// (the server checks it; anyone else's calls get 403 and the page offers no
// button). It draws this node's figures from the operator API
// (docs/api.md, "Operator API"): the same registry /metrics exports, read
// every two seconds, rates from the difference of two reads, and the node's
// connections with a button to close one. Loaded after app.js, whose api()
// and state it uses; app.js tells it of each hello with a "fanout:hello"
// event.
"use strict";

const ops = { timer: null, last: null, history: [], open: false };
const SAMPLES = 60;

function opsEl(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function ms(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  return seconds < 0.001 ? `${(seconds * 1000).toFixed(2)} ms` : `${(seconds * 1000).toFixed(1)} ms`;
}

function uptime(s) {
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : `${m}m ${Math.floor(s % 60)}s`;
}

// Per-second rates of the counters between two reads.
function rates(prev, cur, dt) {
  const rate = (name) => prev && dt > 0 ? Math.max(0, (cur[name] - prev[name]) / dt) : null;
  return {
    deliveries: rate("fanout_deliveries_total"),
    publishes: rate("fanout_publishes_total"),
    commits: rate("fanout_persist_messages_committed_total"),
  };
}

function card(title, value, note) {
  const c = opsEl("div", "ops-card");
  c.append(opsEl("div", "ops-title", title), opsEl("div", "ops-value", value));
  if (note) c.append(opsEl("div", "ops-note", note));
  return c;
}

function fmtRate(v) {
  return v === null ? "…" : v >= 100 ? Math.round(v).toLocaleString() : v.toFixed(1);
}

function drawSpark(canvas, values) {
  const g = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  const max = Math.max(1, ...values);
  g.clearRect(0, 0, w, h);
  g.strokeStyle = "#007a5a";
  g.lineWidth = 2;
  g.beginPath();
  values.forEach((v, i) => {
    const x = (i / (SAMPLES - 1)) * w, y = h - 2 - (v / max) * (h - 4);
    i ? g.lineTo(x, y) : g.moveTo(x, y);
  });
  g.stroke();
}

function renderFigures(body, r) {
  const m = body.metrics, build = m.fanout_build_info || {};
  const commit = m.fanout_persist_commit_seconds || {}, fan = m.fanout_fanout_seconds || {};
  $("ops-node").textContent = `${body.node} · fanout ${build.version} (${build.commit}) · up ${uptime(m.fanout_uptime_seconds)}`;
  const cards = $("ops-cards");
  cards.replaceChildren(
    card("Connections", String((m.fanout_connections || 0) + (m.fanout_dpdk_connections || 0)),
         m.fanout_dpdk_connections !== undefined ? `DPDK ${m.fanout_dpdk_connections}` : "socket edge"),
    card("Deliveries/s", fmtRate(r.deliveries)),
    card("Publishes/s", fmtRate(r.publishes), `commits/s ${fmtRate(r.commits)}`),
    card("Commit latency", `p50 ${ms(commit.p50_seconds)}`, `p99 ${ms(commit.p99_seconds)}`),
    card("Commit to delivery", `p99 ${ms(fan.p99_seconds)}`),
    card("Persist queue", String(m.fanout_persist_queue_depth),
         m.fanout_persist_connected ? "PostgreSQL connected" : "PostgreSQL DISCONNECTED"));
  if (m.fanout_cluster_ring_share !== undefined)
    cards.append(card("Ring share", `${(m.fanout_cluster_ring_share * 100).toFixed(1)} %`,
                      m.fanout_cluster_lease_held ? "lease held" : "NO LEASE"));
  (m.fanout_dpdk_worker_load || []).forEach((load, i) =>
    cards.append(card(`lcore ${i} load`, `${Math.round(load * 100)} %`)));
  $("ops-cards").querySelectorAll(".ops-note").forEach((n) => {
    if (/DISCONNECTED|NO LEASE/.test(n.textContent)) n.classList.add("bad");
  });
  drawSpark($("ops-spark"), ops.history);
}

// A cluster's members as this node knows them (null for a node alone).
function renderNodes(nodes) {
  $("ops-nodes-box").hidden = !nodes;
  if (!nodes) return;
  $("ops-nodes").replaceChildren(...nodes.map((n) => {
    const tr = opsEl("tr", n.self ? "ops-self" : "");
    for (const v of [n.self ? `${n.name} (this node)` : n.name, n.admin, n.peer,
                     n.draining ? "draining" : "active"])
      tr.append(opsEl("td", "", v));
    return tr;
  }));
}

function renderConnections(body) {
  const rows = body.connections.map((c) => {
    const tr = opsEl("tr");
    for (const v of [c.user, c.peer, new Date(c.opened).toLocaleTimeString(), c.state,
                     String(c.subscriptions), String(c.queued_bytes)])
      tr.append(opsEl("td", "", v));
    const close = opsEl("button", "link", "Close");
    close.title = `Close ${c.user}'s connection (code 4002; the client may reconnect)`;
    close.addEventListener("click", async () => {
      const r = await api("DELETE", `/api/v1/admin/connections/${c.id}`);
      if (!r.ok) flash(r.body.error ? r.body.error.message : "could not close it");
      refreshOps();
    });
    const td = opsEl("td");
    td.append(close);
    tr.append(td);
    return tr;
  });
  $("ops-conn-body").replaceChildren(...rows);
  $("ops-conn-count").textContent = body.truncated
    ? `${body.total} connections (the first ${body.connections.length} shown)`
    : `${body.total} connection${body.total === 1 ? "" : "s"}`;
}

async function refreshOps() {
  const [s, c] = await Promise.all([api("GET", "/api/v1/admin/status"),
                                    api("GET", "/api/v1/admin/connections?limit=200")]);
  if (!s.ok || !c.ok) {
    $("ops-error").hidden = false;
    $("ops-error").textContent = s.status === 403 ? "Only the node's admins may see this page."
      : "The node did not answer; retrying.";
    return;
  }
  $("ops-error").hidden = true;
  const now = performance.now();
  const r = rates(ops.last && ops.last.m, s.body.metrics, ops.last ? (now - ops.last.t) / 1000 : 0);
  ops.last = { m: s.body.metrics, t: now };
  if (r.deliveries !== null) ops.history = [...ops.history, r.deliveries].slice(-SAMPLES);
  renderFigures(s.body, r);
  renderNodes(s.body.nodes);
  renderConnections(c.body);
}

function openOps() {
  ops.open = true;
  $("chat-main").hidden = true;
  $("thread").hidden = true;
  $("ops").hidden = false;
  refreshOps();
  clearInterval(ops.timer);
  ops.timer = setInterval(refreshOps, 2000);
}

function closeOps() {
  ops.open = false;
  clearInterval(ops.timer);
  $("ops").hidden = true;
  $("chat-main").hidden = false;
}

document.addEventListener("fanout:hello", async () => {
  const r = await api("GET", "/api/v1/admin/status");
  $("ops-open").hidden = !r.ok;
  if (!r.ok && ops.open) closeOps();
});

document.addEventListener("DOMContentLoaded", () => {
  $("ops-open").addEventListener("click", openOps);
  $("ops-close").addEventListener("click", closeOps);
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && ops.open) closeOps(); });
});
