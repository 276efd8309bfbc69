"""The HTML report's page: its template, style and script (all inline: the file is self-contained).

The script sorts the stage table by a header's column (click again: the other way), filters it by
verdict and by name, follows the view in the page address (``#sort=rel_err:desc&verdict=LARGE``)
and, once the page has loaded, records on ``<body>`` how many rows are shown (``data-rows``) and
how many images decoded (``data-images``, of ``data-image-count``): what a browser test checks.
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body data-ready="0">
<header>
<h1>numtrace diff</h1>
{header}
</header>
<main>
<section id="chart"><h2>Relative error by stage</h2>
<p class="note">rms(candidate − reference) / rms(reference), log scale; hover a point for its stage.</p>
{chart}</section>
<section id="stages"><h2>Stages</h2>
<div class="controls">
<label><input type="checkbox" class="vf" value="MATCH" checked> MATCH</label>
<label><input type="checkbox" class="vf" value="SMALL" checked> SMALL</label>
<label><input type="checkbox" class="vf" value="LARGE" checked> LARGE</label>
<label><input type="checkbox" class="vf" value="MISSING" checked> MISSING</label>
<input type="search" id="q" placeholder="filter stages by name">
<span id="shown"></span>
</div>
<div class="scroll"><table id="stage-table">
<thead><tr>
<th data-key="index" data-type="num">#</th><th data-key="stage">stage</th><th>shape</th>
<th data-key="verdict" data-type="verdict">verdict</th><th data-key="rel_err" data-type="num">rel err</th>
<th data-key="growth" data-type="num">growth</th><th data-key="max_abs" data-type="num">max |Δ|</th>
<th data-key="out_of_tol" data-type="num">out of tol</th><th>reference</th><th>candidate</th><th>diagnosis</th>
</tr></thead>
<tbody>
{table}
</tbody></table></div>
</section>
<section id="details"><h2>Divergent stages</h2>
{details}
</section>
</main>
<footer>numtrace {version} · reference first, candidate second · verdicts: trace diff --help</footer>
<script>{script}</script>
</body>
</html>
"""

STYLE = """
:root { --match: #2e7d32; --small: #ef8f00; --large: #c62828; --missing: #8e24aa; --ink: #1f2933; --muted: #616e7c; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       background: #f5f7fa; }
header { background: #102a43; color: #f0f4f8; padding: 18px 28px 14px; }
header h1 { margin: 0 0 6px; font-size: 20px; letter-spacing: .5px; }
header .summary { max-width: 1100px; color: #d9e2ec; }
main { padding: 8px 28px 28px; }
section { background: #fff; border-radius: 8px; box-shadow: 0 1px 3px rgba(16,42,67,.12); margin: 16px 0;
          padding: 14px 18px; }
h2 { font-size: 16px; margin: 0 0 8px; }
h3 { font-size: 15px; margin: 4px 0 6px; }
.note, footer { color: var(--muted); font-size: 12.5px; }
footer { padding: 0 28px 24px; }
.badge { display: inline-block; border-radius: 10px; padding: 1px 9px; margin-right: 6px; font-weight: 600;
         font-size: 12px; color: #fff; }
.v-MATCH.badge { background: var(--match); } .v-SMALL.badge { background: var(--small); }
.v-LARGE.badge { background: var(--large); } .v-MISSING.badge { background: var(--missing); }
.outcome { display: inline-block; font-weight: 700; text-transform: uppercase; letter-spacing: 1px; margin: 4px 0;
           padding: 2px 10px; border-radius: 4px; }
.o-passes { background: var(--match); } .o-fails { background: var(--large); }
.o-not-verified { background: var(--small); }
.warn { color: #ffd8a8; }
.controls { display: flex; gap: 14px; align-items: center; flex-wrap: wrap; margin-bottom: 8px; }
.controls input[type=search] { padding: 4px 8px; min-width: 240px; border: 1px solid #bcccdc; border-radius: 4px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th { text-align: left; background: #f0f4f8; position: sticky; top: 0; padding: 6px 8px; white-space: nowrap; }
th[data-key] { cursor: pointer; } th[data-key]:hover { background: #d9e2ec; }
th.asc::after { content: " ▲"; } th.desc::after { content: " ▼"; }
td { padding: 5px 6px; border-top: 1px solid #e4e7eb; vertical-align: top; }
td:nth-child(5), td:nth-child(6), td:nth-child(7), td:nth-child(8) { text-align: right; white-space: nowrap;
     font-variant-numeric: tabular-nums; }
td:nth-child(9), td:nth-child(10) { color: var(--muted); font-size: 12px; }
td:last-child { min-width: 200px; }
td:first-child, td:nth-child(3) { white-space: nowrap; }
tr.v-LARGE td:first-child { border-left: 4px solid var(--large); }
tr.v-SMALL td:first-child { border-left: 4px solid var(--small); }
tr.v-MISSING td:first-child { border-left: 4px solid var(--missing); }
tr[hidden] { display: none; }
svg.chart { width: 100%; height: auto; }
svg .grid { stroke: #e4e7eb; } svg .tick { font-size: 11px; fill: var(--muted); }
svg .trend { fill: none; stroke: #9aa5b1; stroke-width: 1; }
svg .mark { stroke: #6a1b9a; stroke-dasharray: 5 4; stroke-width: 1.4; }
svg .marklabel { font-size: 12px; fill: #6a1b9a; }
svg.profile { width: 520px; max-width: 100%; height: auto; }
svg .frame { fill: #fafbfc; stroke: #e4e7eb; } svg .ref { fill: none; stroke: #1565c0; stroke-width: 1.3; }
svg .cand { fill: none; stroke: #e65100; stroke-width: 1.3; stroke-dasharray: 5 3; }
article { border-top: 1px solid #e4e7eb; padding: 10px 0 4px; }
.findings { margin: 4px 0 10px; }
.figures { display: flex; gap: 18px; flex-wrap: wrap; align-items: flex-start; }
figure { margin: 0; } figure img { width: 340px; height: 190px; image-rendering: pixelated; border: 1px solid #d9e2ec; }
figcaption { font-size: 12px; color: var(--muted); text-align: center; }
"""

SCRIPT = r"""
(function () {
  const table = document.getElementById("stage-table");
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const boxes = Array.from(document.querySelectorAll("input.vf"));
  const query = document.getElementById("q");
  const order = {MATCH: 0, SMALL: 1, LARGE: 2, MISSING: 3};
  function filter() {
    const on = new Set(boxes.filter(b => b.checked).map(b => b.value));
    const q = query.value.trim().toLowerCase();
    let shown = 0;
    rows.forEach(r => {
      const show = on.has(r.dataset.verdict) && (!q || (r.dataset.stage || "").toLowerCase().includes(q));
      r.hidden = !show; if (show) shown++;
    });
    document.getElementById("shown").textContent = shown + " of " + rows.length + " stages";
    document.body.dataset.rows = shown;
  }
  function value(r, key, type) {
    const v = r.dataset[key];
    if (type === "num") return v === undefined || v === "" ? null : parseFloat(v);
    if (type === "verdict") return order[v];
    return v || "";
  }
  function sort(key, dir) {
    const th = table.querySelector('th[data-key="' + key + '"]');
    if (!th) return;
    const type = th.dataset.type || "text";
    table.querySelectorAll("th").forEach(h => h.classList.remove("asc", "desc"));
    th.classList.add(dir);
    const sign = dir === "asc" ? 1 : -1;
    rows.sort((a, b) => {
      const x = value(a, key, type), y = value(b, key, type);
      if (x === null && y === null) return value(a, "index", "num") - value(b, "index", "num");
      if (x === null) return 1;
      if (y === null) return -1;
      const c = x < y ? -1 : x > y ? 1 : 0;
      return c ? sign * c : value(a, "index", "num") - value(b, "index", "num");
    }).forEach(r => body.appendChild(r));
    document.body.dataset.sort = key + ":" + dir;
  }
  table.querySelectorAll("th[data-key]").forEach(th => th.addEventListener("click", () => {
    sort(th.dataset.key, th.classList.contains("asc") ? "desc" : "asc");
  }));
  boxes.forEach(b => b.addEventListener("change", filter));
  query.addEventListener("input", filter);
  const view = new URLSearchParams(location.hash.slice(1));
  if (view.has("verdict")) {
    const wanted = new Set(view.get("verdict").split(","));
    boxes.forEach(b => { b.checked = wanted.has(b.value); });
  }
  if (view.has("q")) query.value = view.get("q");
  filter();
  if (view.has("sort")) { const [key, dir] = view.get("sort").split(":"); sort(key, dir || "asc"); }
  window.addEventListener("load", () => {
    const images = Array.from(document.images);
    document.body.dataset.imageCount = images.length;
    document.body.dataset.images = images.filter(i => i.complete && i.naturalWidth > 0).length;
    document.body.dataset.ready = "1";
  });
})();
"""
