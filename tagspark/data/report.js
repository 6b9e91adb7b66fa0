"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const fmt = (n) => n == null ? "-" : n >= 1e9 ? (n / 1e9).toFixed(1) + "B" :
  n >= 1e6 ? (n / 1e6).toFixed(1) + "M" : n >= 1e3 ? (n / 1e3).toFixed(1) + "k" : String(n);
const norm = (t) => t.trim().replace(/^[#\uff03\s]+/, "").toLowerCase();
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}
function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

// the run at a glance
const R = D.run;
const reasons = Object.entries(R.rejected_by_reason || {}).map(([r, n]) => `${r}: ${n}`);
const glance = [
  ["posts read", R.read], ["posts kept", R.kept],
  ["rejected", (R.rejected || 0).toLocaleString("en") + (reasons.length ? ` (${reasons.join("; ")})` : "")],
  ["without tags", R.no_tags], ["over the tag cap", R.truncated],
  ["in the mixed bucket", R.mixed], ["placed by their rarer tags", R.placed_by_tags],
  ["k", `${R.k}, ${R.k_chosen_by}`], ["method", R.method], ["seed", R.seed],
  ["popularity", R.popularity], ["finished", R.finished_at],
  ["timings (s)", Object.entries(R.timings || {}).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", ")],
];
for (const [k, v] of glance) {
  if (v == null || v === "") continue;
  const text = typeof v === "number" ? v.toLocaleString("en") : String(v);
  $("glance").append(el("dt", {text: k}), el("dd", {text}));
}
$("subtitle").textContent = `${D.categories.filter((c) => !c.mixed).length} categories from ${(R.kept || 0).toLocaleString("en")} posts`;

// category sizes: one bar a category, largest first, each a link to its card; the SVG
// scales to the page (viewBox), so k=2 and k=500 both fill the chart's width
(function sizes() {
  const cats = D.categories, W = 900, H = 230, L = 58, R = 6, T = 8, B = 44;
  const pw = W - L - R, ph = H - T - B, most = Math.max(1, ...cats.map((c) => c.size));
  const step = pw / Math.max(1, cats.length), gap = step >= 6 ? 2 : step >= 3 ? 1 : 0;
  const s = svg("svg", {viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "xMinYMin meet",
    role: "img", "aria-label": `Posts per category, largest first (${cats.length} bars)`});
  const axis = (x1, y1, x2, y2) => svg("line", {x1, y1, x2, y2, stroke: "#555"});
  s.append(axis(L, T, L, T + ph), axis(L, T + ph, L + pw, T + ph));
  for (const v of [0, most / 2, most]) {
    const y = T + ph - (v / most) * ph;
    s.append(axis(L - 4, y, L, y));
    const t = svg("text", {x: L - 6, y: y + 4, "text-anchor": "end"}); t.textContent = fmt(Math.round(v));
    s.append(t);
  }
  const ytitle = svg("text", {x: 12, y: T + ph / 2, "text-anchor": "middle",
    transform: `rotate(-90 12 ${T + ph / 2})`}); ytitle.textContent = "posts";
  const xtitle = svg("text", {x: L + pw / 2, y: H - 6, "text-anchor": "middle"});
  xtitle.textContent = `categories, largest first (${cats.length}); a bar opens its card`;
  s.append(ytitle, xtitle);
  cats.forEach((c, i) => {
    const bh = Math.max(1, (c.size / most) * ph);
    const a = svg("a", {href: `#cat-${c.id}`, class: "bar"});
    const r = svg("rect", {x: L + i * step + gap / 2, y: T + ph - bh, width: Math.max(0.5, step - gap),
      height: bh, fill: c.mixed ? "#999" : "#2b6cb0"});
    const t = svg("title", {}); t.textContent = `${c.name}: ${c.size} posts (${(100 * c.share).toFixed(1)}%)`;
    r.append(t); a.append(r); s.append(a);
  });
  if (step >= 60) {  // a few wide bars: each named under it, as far as it fits
    cats.forEach((c, i) => {
      const fit = Math.floor(step / 6.5);
      const t = svg("text", {x: L + (i + 0.5) * step, y: T + ph + 14, "text-anchor": "middle"});
      t.textContent = c.name.length > fit ? c.name.slice(0, fit - 1) + "\u2026" : c.name;
      s.append(t);
    });
  }
  $("sizes").append(s);
})();

// the k-selection curve
if (D.curve && D.curve.curve) {
  $("curve-section").hidden = false;
  const pts = D.curve.curve, W = 520, H = 180, L = 50;
  const ks = pts.map((p) => p.k), sil = pts.map((p) => p.silhouette);
  const lo = Math.min(...sil), hi = Math.max(...sil), span = hi - lo || 1;
  const x = (i) => L + (i * (W - L - 20)) / Math.max(1, pts.length - 1);
  const y = (v) => 10 + (H - 40) * (1 - (v - lo) / span);
  const s = svg("svg", {width: W, height: H, role: "img",
    "aria-label": `Silhouette by k; chosen k = ${D.curve.chosen_k}`});
  s.append(svg("polyline", {points: pts.map((p, i) => `${x(i)},${y(p.silhouette)}`).join(" "),
    fill: "none", stroke: "#8a4b00", "stroke-width": 2}));
  pts.forEach((p, i) => {
    s.append(svg("circle", {cx: x(i), cy: y(p.silhouette), r: p.k === D.curve.chosen_k ? 5 : 3,
      fill: p.k === D.curve.chosen_k ? "#8a4b00" : "#fff", stroke: "#8a4b00"}));
    const t = svg("text", {x: x(i), y: H - 12, "text-anchor": "middle"}); t.textContent = p.k;
    s.append(t);
  });
  const t = svg("text", {x: 0, y: 12}); t.textContent = "silhouette"; s.append(t);
  $("curve").append(s, el("p", {text: `Chosen k = ${D.curve.chosen_k} (highest silhouette on ${D.curve.sample_posts} sampled posts). k tried: ${ks.join(", ")}.`}));
}

// category cards
const cards = new Map(), where = new Map();
function tagButton(tag) {
  return el("button", {class: "tag", type: "button", "data-tag": tag, text: "#" + tag,
    "aria-label": `#${tag}: show every category it is in`});
}
for (const c of D.categories) {
  const top = Math.max(1e-12, ...c.tags.map((t) => t.weight));
  const list = el("ul", {class: "tags"});
  for (const t of c.tags) {
    (where.get(t.tag) || where.set(t.tag, []).get(t.tag)).push(c);
    const info = el("span", {},
      t.recommended ? el("span", {class: "rec", title: "recommended", text: "\u2605 "}) : null,
      t.band ? el("span", {class: "band " + t.band, title: `${fmt(t.popularity)} posts on the network; specificity ${t.specificity}`, text: t.band.replace("_", " ")}) : null);
    list.append(el("li", {"data-tag": t.tag}, tagButton(t.tag),
      el("div", {class: "wbar", style: `width:${(100 * t.weight / top).toFixed(1)}%`,
        title: `weight ${t.weight.toFixed(4)}, ${t.posts} posts of this category`}), info));
  }
  const card = el("article", {class: "card" + (c.mixed ? " mixed" : ""), "data-name": c.name,
    id: `cat-${c.id}`, "aria-label": c.name},
    el("h3", {text: c.name}),
    el("div", {class: "meta", text: `${c.size.toLocaleString("en")} posts, ${(100 * c.share).toFixed(1)}%`}),
    list);
  cards.set(c.id, card);
  $("cards").append(card);
}

// search: cards whose name or one of whose tags starts with the query
function filter(query) {
  const q = norm(query);
  let shown = 0;
  for (const c of D.categories) {
    const card = cards.get(c.id);
    const hit = !q || c.name.startsWith(q) || c.name.split("_").some((p) => p.startsWith(q)) ||
      c.tags.some((t) => t.tag.startsWith(q));
    card.hidden = !hit;
    for (const li of card.querySelectorAll("li")) li.classList.toggle("hit", !!q && li.dataset.tag.startsWith(q));
    shown += hit;
  }
  $("shown").textContent = `${shown} of ${D.categories.length} categories`;
}
$("search").addEventListener("input", (e) => { $("tag-info").textContent = ""; filter(e.target.value); });
$("clear").addEventListener("click", () => { $("search").value = ""; $("tag-info").textContent = ""; filter(""); });

// a tag clicked: every category it appears in
$("cards").addEventListener("click", (e) => {
  const b = e.target.closest("button.tag");
  if (!b) return;
  const tag = b.dataset.tag, found = where.get(tag) || [];
  for (const c of D.categories) cards.get(c.id).hidden = !found.includes(c);
  $("shown").textContent = `${found.length} of ${D.categories.length} categories`;
  $("tag-info").replaceChildren(el("strong", {text: `#${tag}`}),
    ` is in ${found.length} categor${found.length === 1 ? "y" : "ies"}: ` +
    found.map((c) => `${c.name} (weight ${c.tags.find((t) => t.tag === tag).weight.toFixed(3)})`).join(", "));
});

// tags for my post: the ranking of tagspark suggest (tagspark.suggest.ranked): a candidate
// scores the sum of its companion scores over the post's tags, ties to the more frequent
// tag; a post without companions gets the listed tags of the category they weigh most
function suggestFor(mine, n) {
  const S = D.suggest, total = new Map(), withs = new Map();
  for (const t of mine) for (const [j, w, p] of ((S && S.companions[t]) || [])) {
    if (mine.includes(S.names[j])) continue;
    total.set(j, (total.get(j) || 0) + w);
    if (p > 0) { if (!withs.has(j)) withs.set(j, []); withs.get(j).push([t, p]); }
  }
  const found = [...total.keys()].sort((a, b) => total.get(b) - total.get(a) || a - b)
    .slice(0, n).map((j) => {
      const [band, rec, category] = S.stats[j];
      return {tag: S.names[j], score: total.get(j), band: S.bands[band] || "", recommended: !!rec,
        category: (D.categories.find((c) => c.id === category) || {}).name || "",
        goes_with: withs.get(j) || []};
    });
  if (found.length < n) {
    const weigh = (c) => c.tags.filter((t) => mine.includes(t.tag)).reduce((a, t) => a + t.weight, 0);
    const best = D.categories.filter((c) => !c.mixed && weigh(c) > 0)
      .sort((a, b) => weigh(b) - weigh(a) || a.id - b.id)[0];
    const taken = new Set(found.map((f) => f.tag));
    for (const t of best ? best.tags : []) {
      if (found.length >= n) break;
      if (mine.includes(t.tag) || taken.has(t.tag)) continue;
      found.push({tag: t.tag, score: 0, band: t.band || "", recommended: !!t.recommended,
        category: best.name, goes_with: []});
    }
  }
  return found;
}

$("post-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const mine = [...new Set($("post-tags").value.split(/[\s,;]+/).map(norm).filter(Boolean))];
  const out = $("post-result");
  if (!mine.length) { out.textContent = "Type a few tags first."; return; }
  const found = suggestFor(mine, 10);
  if (!found.length) { out.textContent = "No listed tag goes with these tags."; return; }
  const list = el("ol", {});
  for (const f of found) {
    const why = f.goes_with.length ? "goes with " + f.goes_with.sort((a, b) => b[1] - a[1])
      .map(([t, p]) => `#${t} (${p} post${p === 1 ? "" : "s"})`).join(", ") : `listed by ${f.category}`;
    list.append(el("li", {"data-tag": f.tag},
      el("strong", {text: (f.recommended ? "\u2605 " : "") + "#" + f.tag}),
      ` score ${f.score.toFixed(3)}, ${why}; `,
      el("span", {class: "band " + f.band, text: f.band.replace("_", " ") || "no band"}),
      ` ${f.category}`));
  }
  out.replaceChildren(list);
});

// generic tags and the mixed bucket
const mixed = D.categories.find((c) => c.mixed);
$("generic").append(el("p", {text: D.generic.length ?
  "Generic tags (spread over the categories like the posts themselves; they never name a category): " +
  D.generic.map((g) => `#${g.tag} (${g.posts} posts, ${g.source})`).join(", ") : "No generic tags."}),
  el("p", {text: mixed ? `The mixed bucket holds ${mixed.size.toLocaleString("en")} posts with no category-specific tag.` : "No post went to the mixed bucket."}));

// the evaluation against labels
if (D.evaluation) {
  $("eval-section").hidden = false;
  for (const [k, v] of Object.entries(D.evaluation)) if (typeof v !== "object")
    $("evaluation").append(el("dt", {text: k}), el("dd", {text: typeof v === "number" && !Number.isInteger(v) ? v.toFixed(3) : String(v)}));
}
filter("");
