/// The live page served at `GET /`: one self-contained HTML file (no CDN, no web fonts) that draws
/// the pipeline's DAG from `GET /topology` and refreshes it every second — events/s in and out,
/// queue fill, dead letters, operator watermark and state, Kafka lag, the UDF version and the last
/// reload error. A component whose input queue is over 80% full is drawn red (it is behind: what
/// feeds it is backpressured), as Flink's web UI does.
enum AdminPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sluice</title>
<style>
  :root { --bg:#f6f7f9; --card:#fff; --ink:#1d2433; --muted:#667085; --line:#98a2b3; --ok:#12b76a;
          --warn:#f79009; --hot:#d92d20; --hotbg:#fee4e2; --warnbg:#fef0c7; --stage:#eef4ff; }
  * { box-sizing: border-box; }
  body { margin:0; font:13px/1.35 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
         background:var(--bg); color:var(--ink); }
  header { display:flex; flex-wrap:wrap; gap:18px; align-items:baseline; padding:12px 18px; background:#101828; color:#fff; }
  header h1 { font-size:17px; margin:0; }
  header .item { color:#d0d5dd; } header .item b { color:#fff; }
  #reloadError { color:#fda29b; font-family:ui-monospace, monospace; white-space:pre-wrap; }
  #status.down { color:#fda29b; }
  main { padding:14px 18px; }
  #graph { position:relative; overflow:auto; background:var(--card); border:1px solid #e4e7ec; border-radius:8px; min-height:120px; }
  #graph svg { position:absolute; left:0; top:0; pointer-events:none; }
  .node { position:absolute; width:196px; background:var(--card); border:1.5px solid var(--line); border-radius:7px;
          padding:6px 8px; box-shadow:0 1px 2px rgba(16,24,40,.06); }
  .node.source { border-left:5px solid #2e90fa; } .node.sink { border-right:5px solid #7a5af8; }
  .node.dead_letter { border-style:dashed; }
  .node.warn { background:var(--warnbg); border-color:var(--warn); }
  .node.hot { background:var(--hotbg); border-color:var(--hot); }
  .node .name { font-weight:600; font-size:14px; overflow:hidden; text-overflow:ellipsis; white-space:nowrap; }
  .node .type { color:var(--muted); font-size:11.5px; overflow:hidden; text-overflow:ellipsis; white-space:nowrap; }
  .node .rates { margin-top:3px; font-variant-numeric:tabular-nums; }
  .node .extra { color:var(--muted); font-size:11.5px; font-variant-numeric:tabular-nums; }
  .node .dl { color:var(--hot); font-size:11.5px; }
  .bar { height:6px; background:#eaecf0; border-radius:3px; margin-top:4px; overflow:hidden; }
  .bar span { display:block; height:100%; background:var(--ok); }
  .hot .bar span { background:var(--hot); } .warn .bar span { background:var(--warn); }
  h2 { font-size:14px; margin:18px 0 6px; }
  table { border-collapse:collapse; background:var(--card); border:1px solid #e4e7ec; min-width:60%; }
  th, td { padding:4px 10px; border-bottom:1px solid #eaecf0; text-align:right; font-variant-numeric:tabular-nums; }
  th:first-child, td:first-child, td.k, th.k { text-align:left; }
  tr.hot td { background:var(--hotbg); }
  .legend { color:var(--muted); margin:6px 0 0; }
  .legend i { display:inline-block; width:10px; height:10px; border-radius:2px; margin:0 4px 0 12px; vertical-align:-1px; }
</style>
</head>
<body>
<header>
  <h1 id="pipeline">Sluice</h1>
  <span class="item">phase <b id="phase">…</b></span>
  <span class="item">UDF version <b id="udfVersion">…</b> <span id="udfReload"></span></span>
  <span class="item" id="status">connecting…</span>
  <span id="reloadError"></span>
</header>
<main>
  <div id="graph"><svg id="edges"></svg></div>
  <div class="legend">queue fill:<i style="background:var(--ok)"></i>ok<i style="background:var(--warn)"></i>&gt; 50%<i style="background:var(--hot)"></i>&gt; 80% (behind: backpressure)</div>
  <h2>Components</h2>
  <table>
    <thead><tr><th>component</th><th class="k">kind</th><th>stage</th><th>in/s</th><th>out/s</th><th>queue</th><th>dead letters</th><th>dropped</th><th class="k">state · watermark · lag</th></tr></thead>
    <tbody id="rows"></tbody>
  </table>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const fmt = (v) => v >= 1e6 ? (v / 1e6).toFixed(1) + "M" : v >= 1e4 ? (v / 1e3).toFixed(1) + "k" : v >= 100 ? Math.round(v).toLocaleString("en-US") : String(Math.round(v * 10) / 10);
const bytes = (b) => b >= 1 << 30 ? (b / (1 << 30)).toFixed(1) + " GiB" : b >= 1 << 20 ? (b / (1 << 20)).toFixed(1) + " MiB" : b >= 1024 ? (b / 1024).toFixed(1) + " KiB" : b + " B";
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
const level = (q) => !q ? "" : q.fill > 0.8 ? "hot" : q.fill > 0.5 ? "warn" : "";
const watermark = (ms) => ms === null ? "no watermark yet" : ms >= 4e18 ? "watermark +∞" : "watermark " + new Date(ms).toISOString().replace(".000", "");

function details(n) {
  const out = [];
  if (n.operator) {
    const o = n.operator;
    out.push(`${fmt(o.keys)} keys · ${bytes(o.state_bytes)}`, watermark(o.watermark_ms));
    if (o.late) out.push(`late ${fmt(o.late)}`);
    if (o.state_full) out.push(`STATE FULL ${fmt(o.state_full)}`);
  }
  if (n.kafka) {
    const total = n.kafka.partitions.reduce((s, p) => s + (p.lag || 0), 0);
    out.push(`lag ${fmt(total)}${n.kafka.paused ? " · paused" : ""}`);
    for (const p of n.kafka.partitions.slice(0, 8)) out.push(`${p.topic}[${p.partition}] lag ${p.lag === null ? "?" : fmt(p.lag)}`);
    if (n.kafka.partitions.length > 8) out.push(`… ${n.kafka.partitions.length - 8} more partitions`);
  }
  return out;
}

function nodeHTML(n) {
  const q = n.queue;
  const queue = q ? `<div class="extra">queue ${fmt(q.used)}/${fmt(q.capacity)} ${q.unit} (${Math.round(q.fill * 100)}%)</div><div class="bar"><span style="width:${Math.round(q.fill * 100)}%"></span></div>` : "";
  const dl = n.dead_lettered ? `<div class="dl">dead-lettered ${fmt(n.dead_lettered)}</div>` : "";
  const dropped = n.dropped ? `<div class="dl">dropped ${fmt(n.dropped)}</div>` : "";
  return `<div class="name" title="${esc(n.name)}">${esc(n.name)}</div><div class="type">${esc(n.kind.replace("_", " "))} · ${esc(n.type)}</div>` +
    `<div class="rates">in <b class="rate" data-rate="in">${fmt(n.in_per_s)}</b>/s · out <b class="rate" data-rate="out">${fmt(n.out_per_s)}</b>/s</div>` +
    queue + dl + dropped + details(n).map((d) => `<div class="extra">${esc(d)}</div>`).join("");
}

// Columns: sources first, each transform or sink one right of its furthest input, the dead letter sink last.
function columns(t) {
  const depth = {}, byName = {};
  for (const n of t.nodes) byName[n.name] = n;
  const inputs = {};
  for (const e of t.edges) (inputs[e.to] = inputs[e.to] || []).push(e.from);
  const visit = (name, seen) => {
    if (depth[name] !== undefined) return depth[name];
    if (seen.has(name)) return 0;
    seen.add(name);
    const n = byName[name];
    const d = n.kind === "source" ? 0 : 1 + Math.max(0, ...(inputs[name] || []).map((f) => visit(f, seen)));
    return (depth[name] = d);
  };
  let last = 0;
  for (const n of t.nodes) if (n.kind !== "dead_letter") last = Math.max(last, visit(n.name, new Set()));
  for (const n of t.nodes) if (n.kind === "dead_letter") depth[n.name] = Math.max(1, last);
  const cols = [];
  for (const n of t.nodes) (cols[depth[n.name]] = cols[depth[n.name]] || []).push(n);
  return cols.filter(Boolean);
}

let shape = "";
function render(t) {
  $("pipeline").textContent = "Sluice · " + t.pipeline;
  document.title = "Sluice · " + t.pipeline;
  $("phase").textContent = t.phase;
  $("udfVersion").textContent = t.udf.version;
  $("udfReload").textContent = `(reload: ${t.udf.reload}${t.udf.reloads_rejected ? ", " + t.udf.reloads_rejected + " rejected" : ""})`;
  $("reloadError").textContent = t.udf.last_reload_error ? "last reload error: " + t.udf.last_reload_error : "";
  const graph = $("graph");
  const key = JSON.stringify([t.nodes.map((n) => n.name), t.edges]);
  if (key !== shape) {
    shape = key;
    graph.querySelectorAll(".node").forEach((e) => e.remove());
    for (const n of t.nodes) {
      const div = document.createElement("div");
      div.className = "node " + n.kind;
      div.dataset.name = n.name;
      graph.appendChild(div);
    }
  }
  const divs = {};
  graph.querySelectorAll(".node").forEach((d) => (divs[d.dataset.name] = d));
  for (const n of t.nodes) {
    const d = divs[n.name];
    d.className = "node " + n.kind + " " + level(n.queue);
    d.innerHTML = nodeHTML(n);
  }
  layout(t, divs);
  table(t);
}

function layout(t, divs) {
  const colW = 226, gap = 26, pad = 24;
  let height = 0;
  const box = {};
  columns(t).forEach((col, c) => {
    let y = pad + 14;
    for (const n of col) {
      const d = divs[n.name];
      d.style.left = pad + c * colW + "px";
      d.style.top = y + "px";
      box[n.name] = { x: pad + c * colW, y, w: d.offsetWidth, h: d.offsetHeight };
      y += d.offsetHeight + gap;
    }
    height = Math.max(height, y);
  });
  const width = pad * 2 + Object.values(box).reduce((m, b) => Math.max(m, b.x + b.w), 0);
  const graph = $("graph"), svg = $("edges");
  graph.style.height = height + pad + "px";
  svg.setAttribute("width", Math.max(width, graph.clientWidth));
  svg.setAttribute("height", height + pad);
  let s = `<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="#98a2b3"/></marker></defs>`;
  // Stage boxes (when there are keyed stages): the stage's components with its parallelism.
  if (t.stages.length > 1) {
    for (const st of t.stages) {
      const members = t.nodes.filter((n) => n.stage === st.stage && box[n.name]).map((n) => box[n.name]);
      if (!members.length) continue;
      const x0 = Math.min(...members.map((b) => b.x)) - 8, y0 = Math.min(...members.map((b) => b.y)) - 20;
      const x1 = Math.max(...members.map((b) => b.x + b.w)) + 8, y1 = Math.max(...members.map((b) => b.y + b.h)) + 8;
      const label = st.stage === 0 ? `stage 0 · stateless · ${st.parallelism} workers` : `stage ${st.stage} · ${st.name} · parallelism ${st.parallelism}`;
      s += `<rect x="${x0}" y="${y0}" width="${x1 - x0}" height="${y1 - y0}" rx="8" fill="#eef4ff" fill-opacity=".55" stroke="#84adff" stroke-dasharray="4 3"/>`;
      s += `<text x="${x0 + 8}" y="${y0 + 13}" font-size="11" fill="#3538cd">${esc(label)}</text>`;
    }
  }
  for (const e of t.edges) {
    const a = box[e.from], b = box[e.to];
    if (!a || !b) continue;
    const x1 = a.x + a.w, y1 = a.y + Math.min(a.h / 2, 30), x2 = b.x, y2 = b.y + Math.min(b.h / 2, 30), mx = (x1 + x2) / 2;
    s += `<path d="M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2 - 2},${y2}" fill="none" stroke="#98a2b3" stroke-width="1.6" ${e.when ? 'stroke-dasharray="5 4"' : ""} marker-end="url(#arrow)"/>`;
    if (e.when) s += `<text x="${mx - 14}" y="${(y1 + y2) / 2 - 4}" font-size="10" fill="#667085">when</text>`;
  }
  svg.innerHTML = s;
  // The SVG goes under the nodes.
  if (svg !== graph.firstChild) graph.insertBefore(svg, graph.firstChild);
}

function table(t) {
  $("rows").innerHTML = t.nodes.map((n) => {
    const q = n.queue ? `${Math.round(n.queue.fill * 100)}%` : "";
    return `<tr class="${level(n.queue)}" data-name="${esc(n.name)}"><td>${esc(n.name)}</td><td class="k">${esc(n.kind)}</td><td>${n.stage === null ? "" : n.stage}</td>` +
      `<td class="rate">${fmt(n.in_per_s)}</td><td class="rate">${fmt(n.out_per_s)}</td><td>${q}</td><td>${fmt(n.dead_lettered)}</td><td>${fmt(n.dropped)}</td>` +
      `<td class="k">${esc(details(n).join(" · "))}</td></tr>`;
  }).join("");
}

async function refresh() {
  try {
    const r = await fetch("topology", { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    render(await r.json());
    $("status").textContent = "updated " + new Date().toLocaleTimeString("en-GB");
    $("status").className = "item";
  } catch (err) {
    $("status").textContent = "disconnected (" + err.message + ")";
    $("status").className = "item down";
  }
}
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
"""#
}
