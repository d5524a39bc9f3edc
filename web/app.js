// The fanout web client: for now, the node status card on index.html.
"use strict";
async function probe(path, id, textId) {
  try {
    const r = await fetch(path, { cache: "no-store" });
    document.getElementById(id).className = "dot " + (r.ok ? "ok" : "bad");
    if (textId) document.getElementById(textId).textContent =
      r.ok ? "PostgreSQL reachable, schema current" : (await r.text()).trim();
  } catch (e) {
    document.getElementById(id).className = "dot bad";
  }
}
function refresh() { probe("/healthz", "health"); probe("/readyz", "ready", "ready-text"); }
refresh(); setInterval(refresh, 5000);
