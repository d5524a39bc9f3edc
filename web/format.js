// SPDX-License-Identifier: BSD-3-Clause
// How a message's text is shown: a subset of Markdown (bold, italic,
// strike, inline code, code blocks, quotes, lists, links) rendered by
// markdown-it with raw HTML off, :shortcode: emoji by the names of
// node-emoji's list (both Debian packages, served by fanoutd under
// /vendor/), then rebuilt element by element through an allow-list, so that
// nothing a message says becomes markup beyond that subset, whatever the
// renderer emits. Text is stored as typed; this is only its display.
"use strict";

const Format = (() => {
  // Texts longer than this are shown as typed: a bound on the renderer's work
  // for one message. Debian's markdown-it (8.4.2) is quadratic on some
  // inputs (long runs of spaces, of "*_"): at 4,000 characters the worst
  // known takes about 40 ms here, at 20,000 over half a second.
  const PLAIN_ABOVE = 4000;
  const TAGS = new Set(["P", "BR", "STRONG", "EM", "S", "CODE", "PRE", "BLOCKQUOTE", "UL", "OL", "LI", "A"]);
  let names = {}; // shortcode name -> emoji
  let list = []; // [emoji, name], one per emoji, for the picker

  const emojify = (s) => s.replace(/:([a-z0-9_+-]{1,40}):/g, (all, n) => names[n] || all);

  let md = null;
  if (typeof window.markdownit === "function") {
    md = window.markdownit("zero", { html: false, linkify: true, breaks: true }).enable([
      "fence", "blockquote", "list", "newline", "escape", "backticks", "strikethrough",
      "emphasis", "link", "autolink", "entity", "linkify"]);
    // shortcodes in text only: not in code, not in a link's address
    md.core.ruler.push("shortcodes", (st) => {
      for (const t of st.tokens)
        if (t.type === "inline")
          for (const c of t.children) if (c.type === "text") c.content = emojify(c.content);
    });
  }

  const ready = fetch("/vendor/emoji.json")
    .then((r) => (r.ok ? r.json() : {}))
    .then((j) => {
      names = j;
      const seen = new Set();
      list = Object.entries(j).filter(([, e]) => !seen.has(e) && seen.add(e)).map(([n, e]) => [e, n]);
    })
    .catch(() => {});

  // Copies src's children into out, keeping only allowed elements and
  // attributes; anything else gives its text, never its markup.
  function clean(src, out) {
    for (const n of src.childNodes) {
      if (n.nodeType === Node.TEXT_NODE) {
        out.append(n.data);
        continue;
      }
      if (n.nodeType !== Node.ELEMENT_NODE) continue;
      if (!TAGS.has(n.tagName)) {
        clean(n, out);
        continue;
      }
      const e = document.createElement(n.tagName);
      if (n.tagName === "A") {
        const href = n.getAttribute("href") || "";
        if (!/^(https?:\/\/|mailto:)/i.test(href)) {
          clean(n, out);
          continue;
        }
        e.href = href;
        e.rel = "noopener noreferrer";
        e.target = "_blank";
      } else if (n.tagName === "OL" && /^\d{1,9}$/.test(n.getAttribute("start") || "")) {
        e.setAttribute("start", n.getAttribute("start"));
      }
      clean(n, e);
      out.append(e);
    }
  }

  // Text that Markdown, the linkifier and the shortcodes leave as it is:
  // one line of letters, digits, spaces and , . ; : ? ! ' " where a . or :
  // is followed by a space or ends it (so no address or :name:), not
  // starting like a list item. The renderer would make it one paragraph of
  // itself; made directly it costs a tenth (a page of history is mostly
  // such lines).
  const AS_IS = /^[\p{L}\p{N} ,.;:?!'"]*$/u;
  const asIs = (text) => text.length > 0 && AS_IS.test(text) && !/[.:][^ ]/.test(text)
    && !/^\d+[.]/.test(text) && text === text.trim();

  // The text as a fragment of allowed elements; plain (pre-wrapped) when
  // the renderer is missing or the text is very long. full: through the
  // renderer even when the text is as is (a test compares the two).
  function render(text, full = false) {
    const frag = document.createDocumentFragment();
    if (md && !full && asIs(text)) {
      const p = document.createElement("p");
      p.textContent = text;
      frag.append(p, "\n"); // as the renderer ends a paragraph
      return frag;
    }
    if (!md || text.length > PLAIN_ABOVE) {
      const p = document.createElement("p");
      p.className = "plain";
      p.textContent = emojify(text);
      frag.append(p);
      return frag;
    }
    const doc = new DOMParser().parseFromString(md.render(text), "text/html");
    clean(doc.body, frag);
    return frag;
  }

  return { render, emojify, ready, all: () => list, rendered: () => md !== null };
})();
