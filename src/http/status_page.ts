/**
 * The status page (`GET /status` on the metrics listener, and on the DoH face with
 * `--doh-metrics`): one self-contained HTML page, no external script, font or image, that polls
 * `/metrics` (next to it) every second and shows, over the last five minutes, queries per second
 * by face, p50/p99 latency, the cache hit ratio, the blocked share, upstream health and latency,
 * and open connections, each as a figure and a small chart drawn in inline SVG. Everything is
 * computed in the browser from the Prometheus text; each live figure carries `data-metric` (and
 * `data-face` or `data-upstream` where it is one of several) naming what it shows.
 *
 * Windowed figures (rates, latency, ratios) cover the last {@linkcode STATUS_WINDOW_SECONDS}
 * seconds: the newest sample against the oldest one kept within that window.
 *
 * @module
 */

/** How far back a windowed figure looks. */
export const STATUS_WINDOW_SECONDS = 10;

/** The body of a `/ready` answer (200 when `ok`, else 503), on every listener that serves it. */
export function readyText(ok: boolean): string {
  return ok ? "ready\n" : "not ready: no usable upstream\n";
}

/** The page's Content-Security-Policy: its own inline script and style, fetches to itself. */
export const STATUS_PAGE_CSP =
  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; " +
  "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'";

const STYLE = `
*{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;
background:#0f1419;color:#d9e1e8}header{display:flex;gap:16px;align-items:baseline;padding:14px 20px;
background:#161d24;border-bottom:1px solid #26313b}h1{font-size:18px;margin:0;color:#fff}
header span{color:#8a9aa8}main{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));
gap:14px;padding:16px 20px}section{background:#161d24;border:1px solid #26313b;border-radius:8px;
padding:12px 14px}h2{font-size:12px;font-weight:600;text-transform:uppercase;letter-spacing:.06em;
color:#8a9aa8;margin:0 0 6px}.big{font-size:28px;font-weight:600;color:#fff;font-variant-numeric:tabular-nums}
.unit{font-size:13px;color:#8a9aa8;margin-left:4px}.rows{margin-top:6px}.row{display:flex;
justify-content:space-between;gap:8px;font-variant-numeric:tabular-nums;padding:1px 0}
.row b{font-weight:500;color:#fff}.row>span:last-child{white-space:nowrap;text-align:right}
.row>span:first-child{overflow-wrap:anywhere}svg{display:block;width:100%;height:56px;margin-top:8px}
.up{color:#5fd38d}.down{color:#ff6b6b}.muted{color:#8a9aa8}#err{color:#ff6b6b;padding:0 20px}
`;

/** The page's script: poll, parse, compute, draw. Plain ES2020, no template literals. */
const SCRIPT = `
"use strict";
var WINDOW = ${STATUS_WINDOW_SECONDS}, KEEP = 300, POLL = 1000;
var samples = [];
var series = {qps: [], p50: [], p99: [], hit: [], blocked: [], conns: [], uplat: []};
function parse(text) {
  var out = [];
  text.split("\\n").forEach(function (line) {
    if (!line || line.charAt(0) === "#") return;
    var m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{(.*)\\})? (\\S+)/.exec(line);
    if (!m) return;
    var labels = {};
    var re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\\]|\\\\.)*)"/g, l;
    while ((l = re.exec(m[3] || ""))) labels[l[1]] = l[2].replace(/\\\\(.)/g, function (_, c) { return c === "n" ? "\\n" : c; });
    out.push({name: m[1], labels: labels, value: Number(m[4])});
  });
  return out;
}
function sum(s, name, by) {
  var out = {};
  s.forEach(function (x) {
    if (x.name !== name) return;
    var k = by ? (x.labels[by] || "") : "";
    out[k] = (out[k] || 0) + x.value;
  });
  return out;
}
function total(s, name) { var t = sum(s, name); return t[""] || 0; }
function delta(a, b, name, by) {
  var x = sum(a, name, by), y = sum(b, name, by), out = {};
  Object.keys(y).forEach(function (k) { out[k] = Math.max(0, y[k] - (x[k] || 0)); });
  return out;
}
function quantile(q, a, b) {
  var buckets = {};
  [a, b].forEach(function (s, i) {
    s.forEach(function (x) {
      if (x.name !== "dotbridge_query_duration_seconds_bucket") return;
      var le = x.labels.le;
      buckets[le] = (buckets[le] || 0) + (i === 0 ? -x.value : x.value);
    });
  });
  var les = Object.keys(buckets).map(function (le) { return {le: le === "+Inf" ? Infinity : Number(le), n: buckets[le]}; });
  les.sort(function (p, r) { return p.le - r.le; });
  if (!les.length) return NaN;
  var count = les[les.length - 1].n;
  if (!(count > 0)) return NaN;
  var rank = q * count, prevLe = 0, prevN = 0;
  for (var i = 0; i < les.length; i++) {
    if (les[i].n >= rank) {
      if (les[i].le === Infinity) return prevLe;
      var inBucket = les[i].n - prevN;
      return prevLe + (les[i].le - prevLe) * (inBucket > 0 ? (rank - prevN) / inBucket : 1);
    }
    prevLe = les[i].le; prevN = les[i].n;
  }
  return prevLe;
}
function fmt(v, digits) {
  if (v === undefined || v === null || isNaN(v)) return "\\u2014";
  return v.toFixed(digits);
}
function set(id, text) { var e = document.getElementById(id); if (e) e.textContent = text; }
function rows(id, items) {
  var box = document.getElementById(id);
  while (box.firstChild) box.removeChild(box.firstChild);
  items.forEach(function (it) {
    var row = document.createElement("div"); row.className = "row";
    var k = document.createElement("span"); k.textContent = it.label;
    var vals = document.createElement("span");
    (it.values || [it]).forEach(function (f, i) {
      var v = document.createElement("b"); v.textContent = f.text;
      v.setAttribute("data-metric", f.metric);
      Object.keys(it.attrs || {}).forEach(function (a) { v.setAttribute(a, it.attrs[a]); });
      if (f.value !== undefined) v.setAttribute("data-value", isNaN(f.value) ? "" : String(f.value));
      if (f.cls) v.className = f.cls;
      if (i > 0) vals.appendChild(document.createTextNode(" \u00b7 "));
      vals.appendChild(v);
    });
    row.appendChild(k); row.appendChild(vals); box.appendChild(row);
  });
}
function figure(id, value, digits) {
  var e = document.getElementById(id);
  e.textContent = fmt(value, digits);
  e.setAttribute("data-value", isNaN(value) ? "" : String(value));
}
function spark(id, points, color) {
  var svg = document.getElementById(id), w = 240, h = 56;
  var vals = points.filter(function (p) { return !isNaN(p); });
  var max = Math.max.apply(null, vals.concat([1e-9]));
  // The newest point at the right; the chart fills leftwards over KEEP samples (5 minutes).
  var span = Math.max(points.length, 60) - 1, d = "", first = null, last = null;
  points.forEach(function (p, i) {
    if (isNaN(p)) return;
    var x = w - (points.length - 1 - i) * w / span;
    var y = h - 2 - (p / max) * (h - 6);
    if (first === null) first = x;
    last = x;
    d += (d ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1);
  });
  svg.setAttribute("viewBox", "0 0 " + w + " " + h);
  svg.setAttribute("preserveAspectRatio", "none");
  var area = d ? d + "L" + last.toFixed(1) + " " + h + "L" + first.toFixed(1) + " " + h + "Z" : "";
  svg.innerHTML = '<path d="' + area + '" fill="' + color + '" fill-opacity="0.12" stroke="none"/>' +
    '<path d="' + d + '" fill="none" stroke="' + color + '" stroke-width="1.5" vector-effect="non-scaling-stroke"/>';
}
function push(name, v) { var s = series[name]; s.push(v); if (s.length > KEEP) s.shift(); }
function update() {
  var now = samples[samples.length - 1];
  var base = samples[0];
  for (var i = samples.length - 1; i >= 0; i--) {
    if ((now.t - samples[i].t) / 1000 <= WINDOW + 0.5) base = samples[i]; else break;
  }
  var dt = (now.t - base.t) / 1000;
  var a = base.s, b = now.s;
  var byFace = dt > 0 ? delta(a, b, "dotbridge_queries_total", "face") : {};
  var q = 0; Object.keys(byFace).forEach(function (f) { q += byFace[f]; });
  var qps = dt > 0 ? q / dt : NaN;
  figure("qps", qps, 1);
  rows("qps-faces", Object.keys(sum(b, "dotbridge_queries_total", "face")).sort().map(function (f) {
    var v = dt > 0 ? (byFace[f] || 0) / dt : NaN;
    return {label: f, text: fmt(v, 1) + " /s", metric: "qps", attrs: {"data-face": f}, value: v};
  }));
  var p50 = quantile(0.5, a, b) * 1000, p99 = quantile(0.99, a, b) * 1000;
  figure("p50", p50, 2); figure("p99", p99, 2);
  var ev = dt > 0 ? delta(a, b, "dotbridge_cache_events_total", "event") : {};
  var looked = (ev.hit || 0) + (ev.miss || 0) + (ev.coalesced || 0) + (ev.stale || 0);
  var hit = looked > 0 ? ((ev.hit || 0) + (ev.stale || 0)) / looked * 100 : NaN;
  figure("hit", hit, 1);
  var blocked = total(b, "dotbridge_blocked_total") - total(a, "dotbridge_blocked_total");
  var share = q > 0 ? blocked / q * 100 : NaN;
  figure("blocked", share, 1);
  var conns = sum(b, "dotbridge_connections", "face"), c = 0;
  Object.keys(conns).forEach(function (f) { c += conns[f]; });
  figure("conns", c, 0);
  rows("conn-faces", Object.keys(conns).sort().map(function (f) {
    return {label: f, text: String(conns[f]), metric: "connections", attrs: {"data-face": f}, value: conns[f]};
  }));
  var up = [];
  b.forEach(function (x) { if (x.name === "dotbridge_upstream_up") up.push(x); });
  var upCount = up.filter(function (x) { return x.value === 1; }).length;
  set("up-summary", up.length ? upCount + " of " + up.length + " up" : "no upstream health");
  var latS = dt > 0 ? delta(a, b, "dotbridge_upstream_duration_seconds_sum", "upstream") : {};
  var latN = dt > 0 ? delta(a, b, "dotbridge_upstream_duration_seconds_count", "upstream") : {};
  var items = [], allS = 0, allN = 0;
  Object.keys(latN).forEach(function (u) { allS += latS[u] || 0; allN += latN[u] || 0; });
  up.forEach(function (x) {
    var u = x.labels.upstream;
    var ms = latN[u] > 0 ? latS[u] / latN[u] * 1000 : NaN;
    items.push({label: u, attrs: {"data-upstream": u}, values: [
      {text: x.value === 1 ? "up" : "down", metric: "upstream_up", value: x.value, cls: x.value === 1 ? "up" : "down"},
      {text: fmt(ms, 2) + " ms", metric: "upstream_latency_ms", value: ms}
    ]});
  });
  rows("upstreams", items);
  var uplat = allN > 0 ? allS / allN * 1000 : NaN;
  figure("total", total(b, "dotbridge_queries_total"), 0);
  var start = total(b, "process_start_time_seconds");
  set("uptime", start > 0 ? Math.round(Date.now() / 1000 - start) + " s up" : "");
  b.forEach(function (x) { if (x.name === "dotbridge_build_info") set("version", "version " + x.labels.version); });
  push("qps", qps); push("p50", p50); push("p99", p99); push("hit", hit); push("blocked", share);
  push("conns", c); push("uplat", uplat);
  spark("qps-chart", series.qps, "#4db3ff");
  spark("lat-chart", series.p99, "#ffb84d");
  spark("hit-chart", series.hit, "#5fd38d");
  spark("blocked-chart", series.blocked, "#ff6b6b");
  spark("conn-chart", series.conns, "#b48cff");
  spark("up-chart", series.uplat, "#4dd4c9");
  document.body.setAttribute("data-samples", String(samples.length));
  document.body.setAttribute("data-window", dt.toFixed(3));
}
function poll() {
  fetch("metrics", {cache: "no-store"}).then(function (r) {
    if (!r.ok) throw new Error("HTTP " + r.status);
    return r.text();
  }).then(function (text) {
    samples.push({t: Date.now(), s: parse(text)});
    var keepMs = (WINDOW + 2) * 1000;
    while (samples.length > 2 && samples[samples.length - 1].t - samples[1].t > keepMs) samples.shift();
    set("err", "");
    update();
  }).catch(function (e) { set("err", "cannot read metrics: " + e.message); })
    .then(function () { setTimeout(poll, POLL); });
}
poll();
`;

/** The page. */
export const STATUS_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>dotbridge status</title><style>${STYLE}</style></head>
<body><header><h1>dotbridge</h1><span id="version"></span><span id="uptime"></span>
<span><b class="big" style="font-size:14px" id="total" data-metric="queries_total">\u2014</b> queries</span>
<span class="muted">figures over the last ${STATUS_WINDOW_SECONDS} s, charts over 5 min</span></header>
<div id="err"></div>
<main>
<section><h2>Queries per second</h2><span class="big" id="qps" data-metric="qps">\u2014</span><span class="unit">/s</span>
<div class="rows" id="qps-faces"></div><svg id="qps-chart"></svg></section>
<section><h2>Latency</h2><div class="row"><span>p50</span><span><b class="big" id="p50" data-metric="latency_p50_ms">\u2014</b><span class="unit">ms</span></span></div>
<div class="row"><span>p99</span><span><b class="big" id="p99" data-metric="latency_p99_ms">\u2014</b><span class="unit">ms</span></span></div><svg id="lat-chart"></svg></section>
<section><h2>Cache hit ratio</h2><span class="big" id="hit" data-metric="cache_hit_ratio">\u2014</span><span class="unit">%</span><svg id="hit-chart"></svg></section>
<section><h2>Blocked</h2><span class="big" id="blocked" data-metric="blocked_share">\u2014</span><span class="unit">% of queries</span><svg id="blocked-chart"></svg></section>
<section><h2>Upstreams <span class="muted">(health \u00b7 mean latency)</span></h2><span class="muted" id="up-summary"></span><div class="rows" id="upstreams"></div><svg id="up-chart"></svg></section>
<section><h2>Open connections</h2><span class="big" id="conns" data-metric="connections">\u2014</span>
<div class="rows" id="conn-faces"></div><svg id="conn-chart"></svg></section>
</main><script>${SCRIPT}</script></body></html>
`;
