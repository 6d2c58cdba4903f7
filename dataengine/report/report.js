// Renders the report from the JSON block above: SVG charts, tables, and threshold sliders that
// re-decide the stored filter verdicts of a sample of traces in the page (no server, no network).
"use strict";
(function () {
  const errors = [];
  window.addEventListener("error", (e) => {
    errors.push(String(e.message));
    const box = document.getElementById("errors");
    if (box) box.textContent = "render error: " + errors.join("; ");
    document.body.setAttribute("data-errors", String(errors.length));
  });

  const D = JSON.parse(document.getElementById("report-data").textContent);
  const SVG = "http://www.w3.org/2000/svg";
  const COLORS = ["#3b6fd8", "#e0892f", "#2f9e5b", "#c94040", "#8a5cc7", "#1e9aa8", "#b58b00", "#6b7385"];

  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") e.textContent = v; else e.setAttribute(k, v);
    }
    for (const k of kids) if (k != null) e.append(k);
    return e;
  }
  function s(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text != null) e.textContent = text;
    return e;
  }
  // Scales with its card: fixed drawing coordinates, width follows the container.
  function svgRoot(width, height) {
    return s("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", style: `max-width:${width}px`, role: "img" });
  }
  const fmt = (n) => (n == null ? "–" : Number(n).toLocaleString("en-US"));
  const pct = (x) => (x == null || isNaN(x) ? "–" : (100 * x).toFixed(1) + "%");
  const body = (id) => document.querySelector("#" + id + " .body");
  function notRun(id, what) {
    body(id).append(h("div", { class: "not-run", text: "stage not run: " + what }));
  }
  function card(title, ...kids) { return h("div", { class: "card" }, h("h3", { text: title }), ...kids); }

  function table(rows, cols) {
    const t = h("table");
    t.append(h("tr", {}, ...cols.map((c) => h("th", { class: c.num ? "num" : "", text: c.label }))));
    for (const r of rows) {
      t.append(h("tr", {}, ...cols.map((c) => {
        const v = c.get ? c.get(r) : r[c.key];
        return h("td", { class: c.num ? "num" : "", text: c.fmt ? c.fmt(v) : (v == null ? "–" : String(v)) });
      })));
    }
    return t;
  }

  // Horizontal bars; items: [{label, values: [..]}], one color per series.
  function bars(items, opts) {
    opts = opts || {};
    const series = opts.series || ["value"];
    const rowH = 16 * series.length + 8, left = opts.left || 170, width = opts.width || 520;
    const max = opts.max || Math.max(1, ...items.flatMap((i) => i.values.map((v) => v || 0)));
    const svg = svgRoot(width, items.length * rowH + 26);
    items.forEach((it, i) => {
      const y = i * rowH + 4;
      svg.append(s("text", { x: left - 6, y: y + 12, "text-anchor": "end" }, String(it.label).slice(0, 28)));
      it.values.forEach((v, j) => {
        const w = Math.max(0, ((v || 0) / max) * (width - left - 70));
        svg.append(s("rect", { x: left, y: y + j * 16, width: w, height: 13, fill: COLORS[j % COLORS.length] }));
        svg.append(s("text", { x: left + w + 4, y: y + j * 16 + 11 }, opts.fmt ? opts.fmt(v) : fmt(v)));
      });
    });
    const wrap = h("div");
    if (series.length > 1) wrap.append(legend(series));
    wrap.append(svg);
    return wrap;
  }
  function legend(names) {
    return h("div", { class: "legend" }, ...names.map((n, i) =>
      h("span", {}, h("i", { style: "background:" + COLORS[i % COLORS.length] }), n)));
  }

  function histogram(edges, series, names) {
    const width = 540, height = 200, pad = 34, n = series[0].length;
    const max = Math.max(1, ...series.flat());
    const bw = (width - pad - 10) / n;
    const svg = svgRoot(width, height + 30);
    svg.append(s("line", { class: "axis", x1: pad, y1: height, x2: width - 10, y2: height }));
    series.forEach((vals, j) => vals.forEach((v, i) => {
      const bh = (v / max) * (height - 10);
      const r = s("rect", {
        x: pad + i * bw + (j * bw) / series.length, y: height - bh, width: Math.max(1, bw / series.length - 1),
        height: bh, fill: COLORS[j],
      });
      r.append(s("title", {}, `${fmt(edges[i])}–${fmt(edges[i + 1])}: ${fmt(v)}`));
      svg.append(r);
    }));
    // first and last labels anchored inward, so "5,200" is not cut at the edges of the chart
    for (const [i, anchor] of [[0, "start"], [Math.floor(n / 2), "middle"], [n, "end"]]) {
      svg.append(s("text", { x: pad + i * bw, y: height + 14, "text-anchor": anchor }, fmt(Math.round(edges[i]))));
    }
    svg.append(s("text", { x: 2, y: 12 }, fmt(max)));
    return h("div", {}, legend(names), svg);
  }

  function lineChart(xs, ys, marker, label) {
    const width = 360, height = 150, pad = 36;
    const xmin = Math.min(...xs), xmax = Math.max(...xs), span = xmax - xmin || 1;
    const X = (x) => pad + ((x - xmin) / span) * (width - pad - 10);
    const Y = (y) => height - y * (height - 12);
    const svg = svgRoot(width, height + 28);
    svg.append(s("line", { class: "axis", x1: pad, y1: height, x2: width - 10, y2: height }));
    svg.append(s("line", { class: "axis", x1: pad, y1: 8, x2: pad, y2: height }));
    svg.append(s("text", { x: 2, y: 14 }, "100%"));
    svg.append(s("text", { x: 10, y: height }, "0%"));
    svg.append(s("polyline", {
      points: xs.map((x, i) => `${X(x).toFixed(1)},${Y(ys[i]).toFixed(1)}`).join(" "),
      fill: "none", stroke: COLORS[0], "stroke-width": 2,
    }));
    const m = s("line", { x1: X(marker), x2: X(marker), y1: 8, y2: height, stroke: COLORS[3], "stroke-dasharray": "4 3" });
    svg.append(m);
    svg.append(s("text", { x: pad, y: height + 14 }, fmt(+xmin.toPrecision(3))));
    svg.append(s("text", { x: width - 10, y: height + 14, "text-anchor": "end" }, fmt(+xmax.toPrecision(3))));
    svg.append(s("text", { x: (width + pad) / 2, y: height + 26, "text-anchor": "middle" }, label));
    return { el: svg, move: (v) => { m.setAttribute("x1", X(v)); m.setAttribute("x2", X(v)); } };
  }

  // ---------------------------------------------------------------- sections
  function renderFunnel() {
    const b = body("funnel");
    const steps = D.funnel;
    b.append(bars(steps.map((st) => ({ label: st.step + (st.ran ? "" : " (not run)"), values: [st.n] })), { left: 230 }));
    b.append(h("p", { class: "small", text: "Each step keeps what passed the steps above it; a stage that has not run passes everything through." }));
    const buckets = Object.keys(D.funnel_by_bucket || {}).sort();
    if (buckets.length) {
      const labels = D.funnel_by_bucket[buckets[0]].map((st) => st.step);
      b.append(card("Per bucket (verify and select apply to reasoning traces only)",
        bars(labels.map((l, i) => ({ label: l, values: buckets.map((k) => D.funnel_by_bucket[k][i].n) })), { series: buckets, left: 230 })));
    }
    b.append(h("p", { class: "small", text: D.selection_used
      ? "The mix drew its reasoning traces from the selection “" + D.selection_used + "”."
      : "The mix used no selection." }));
  }

  function renderFilters() {
    if (!D.ran.filter) return notRun("filters", "dataengine filter");
    const b = body("filters");
    const grid = h("div", { class: "grid" });
    grid.append(card("Pass rate per filter", bars(D.filter_pass.map((r) => ({ label: r.filter, values: [r.pass_rate] })),
      { max: 1, fmt: pct })));
    grid.append(card("Top rejection reasons", table(D.filter_reasons.slice(0, 15),
      [{ label: "filter", key: "filter" }, { label: "reason", key: "reason" }, { label: "traces", key: "n", num: 1, fmt }])));
    for (const [key, title] of [["filter_by_domain", "per domain"], ["filter_by_language", "per language"]]) {
      const filters = [...new Set(D[key].map((r) => r.filter))];
      const groups = [...new Set(D[key].map((r) => r.grp))];
      const items = groups.map((g) => ({ label: g, values: filters.map((f) => {
        const r = D[key].find((x) => x.grp === g && x.filter === f); return r ? r.pass_rate : 0; }) }));
      grid.append(card("Pass rate " + title, bars(items.slice(0, 14), { series: filters, max: 1, fmt: pct })));
    }
    b.append(grid);
  }

  function renderLengths() {
    const L = D.lengths;
    if (!D.ran["ingest/generate"] || !L.chars) return notRun("lengths", "no traces yet (dataengine generate / ingest)");
    const grid = h("div", { class: "grid" });
    grid.append(card("Completion length, characters", histogram(L.chars.edges, [L.chars.all, L.chars.passed], ["all traces", "passed every filter"])));
    if (L.tokens) grid.append(card("Completion length, tokens", histogram(L.tokens.edges, [L.tokens.all, L.tokens.passed], ["all traces", "passed every filter"])));
    body("lengths").append(grid);
  }

  function renderLanguages() {
    if (!D.languages.length) return notRun("languages", "no traces yet");
    const series = D.ran.filter ? ["traces", "passed every filter"] : ["traces"];
    body("languages").append(card("Traces per language",
      bars(D.languages.map((r) => ({ label: r.language, values: D.ran.filter ? [r.n, r.passed] : [r.n] })), { series })));
  }

  function renderVerdicts() {
    if (!D.ran.verify) return notRun("verdicts", "dataengine verify");
    const verdicts = ["correct", "incorrect", "unparseable", "timeout", "error"];
    const key = (r) => r.verifier + " · " + (r.bucket && r.bucket !== "reasoning" ? r.bucket + " · " : "") + r.domain;
    const keys = [...new Set(D.verdicts.map(key))];
    const items = keys.map((k) => ({ label: k, values: verdicts.map((v) => {
      const r = D.verdicts.find((x) => key(x) === k && x.verdict === v); return r ? r.n : 0; }) }));
    body("verdicts").append(card("Verdicts per verifier and domain", bars(items, { series: verdicts, left: 200 })));
  }

  function renderDedup() {
    if (!D.ran.dedup) return notRun("dedup", "dataengine dedup / dataengine decontaminate");
    const d = D.dedup;
    const rows = Object.entries(d).map(([k, v]) => ({ k: k.replaceAll("_", " "), v }));
    const grid = h("div", { class: "grid" });
    grid.append(card("Figures", table(rows, [{ label: "figure", key: "k" }, { label: "count", key: "v", num: 1, fmt }])));
    grid.append(card("Contamination per benchmark", D.contamination.length
      ? table(D.contamination, [{ label: "benchmark", key: "benchmark" }, { label: "traces", key: "traces", num: 1, fmt },
        { label: "prompts", key: "prompts", num: 1, fmt }])
      : h("p", { class: "small", text: "no benchmark hits recorded" })));
    body("dedup").append(grid);
  }

  function renderMix() {
    if (!D.ran.mix) return notRun("mix", "dataengine mix");
    body("mix").append(h("p", { class: "small", text: `mix ${D.mix_id} (the exported one unless chosen with ` +
      "`dataengine report --mix-id`); \"in the mix\" in the funnel counts its traces" }));
    const grid = h("div", { class: "grid" });
    const buckets = {};
    for (const r of D.mix) buckets[r.bucket] = (buckets[r.bucket] || 0) + r.n;
    const q = D.mix_quota || {};
    const names = [...new Set([...Object.keys(buckets), ...Object.keys(q)])];
    grid.append(card("Buckets: chosen against quota", bars(names.map((n) => ({ label: n, values: [buckets[n] || 0, q[n] || 0] })),
      { series: ["chosen", "quota"] })));
    grid.append(card("Per bucket and domain", table(D.mix, [{ label: "bucket", key: "bucket" }, { label: "domain", key: "domain" },
      { label: "rows", key: "n", num: 1, fmt }])));
    if (D.mix_excluded.length) {
      grid.append(card("Left out of the mix, and shortfall", table(D.mix_excluded, [{ label: "bucket", key: "bucket" },
        { label: "reason", key: "reason" }, { label: "traces", key: "n", num: 1, fmt }])));
    }
    body("mix").append(grid);
  }

  function renderRuns() {
    if (!D.runs.length) return notRun("runs", "no stage has run");
    body("runs").append(table(D.runs, [
      { label: "stage", key: "stage" }, { label: "status", key: "status" }, { label: "started", key: "started_at" },
      { label: "seconds", key: "seconds", num: 1, fmt: (v) => (v == null ? "–" : v.toFixed(1)) },
      { label: "in", key: "count_in", num: 1, fmt }, { label: "out", key: "count_out", num: 1, fmt },
      { label: "quarantined", key: "count_quarantined", num: 1, fmt }]));
  }

  // ---------------------------------------------------------------- live thresholds
  // A slider re-decides its filter: a sampled trace passes the filter when every slider of that
  // filter holds and it was either stored as passed or rejected for a reason the sliders decide.
  function renderTuning() {
    const sample = D.sample, sliders = D.sliders;
    if (!D.ran.filter || !sample.length) return notRun("tuning", "dataengine filter (the sliders need stored scores)");
    const b = body("tuning");
    const state = sliders.map((sl) => ({ ...sl }));
    const filters = [...new Set(sample.flatMap((t) => Object.keys(t.f)))].sort();

    function holds(st, v) { return v == null || (st.op === ">=" ? v >= st.value : v <= st.value); }
    function filterPass(t, f, states) {
      const r = t.f[f];
      if (!r) return true;
      const mine = states.filter((st) => st.filter === f && st.active);
      if (!mine.length) return r[0];
      const decided = r[0] || mine.some((st) => st.reasons.includes(r[1]));
      return decided && mine.every((st) => holds(st, r[2][st.score]));
    }
    function traceRate(states, pick) {
      let n = 0, ok = 0;
      for (const t of sample) {
        if (pick && !pick(t)) continue;
        n++;
        if (filters.every((f) => filterPass(t, f, states))) ok++;
      }
      return n ? ok / n : NaN;
    }
    const stored = sliders.map((sl) => ({ ...sl, active: false }));

    const summary = h("div", { class: "grid" });
    const overall = h("div", { class: "big" });
    const perFilter = h("div");
    const perGroup = h("div");
    summary.append(card("Pass rate, every filter (sample of " + fmt(sample.length) + " traces)", overall,
      h("div", { class: "small", text: "stored verdicts: " + pct(traceRate(stored)) })));
    summary.append(card("Per filter", perFilter));
    summary.append(card("Per domain and language", perGroup));
    b.append(summary);

    const controls = card("Thresholds");
    const curves = h("div", { class: "grid" });
    const charts = [];
    state.forEach((st, i) => {
      const vals = sample.map((t) => (t.f[st.filter] ? t.f[st.filter][2][st.score] : undefined)).filter((v) => v != null);
      let lo = Math.min(...vals), hi = Math.max(...vals);
      if (vals.length && hi === lo) {  // every sampled score equal: sweep around it, so the step at that value shows
        const d = Math.abs(lo) * 0.5 || 1;
        lo -= d; hi += d;
      }
      const step = (hi - lo) / 200;
      if (st.value == null) st.value = st.op === ">=" ? lo : hi;
      st.active = st.reasons.length > 0;
      const out = h("span", { class: "val" });
      const range = h("input", { type: "range", min: lo, max: hi, step, value: st.value, "data-slider": i });
      const op = h("select", {}, h("option", { value: ">=", text: "≥" }), h("option", { value: "<=", text: "≤" }));
      op.value = st.op;
      const row = h("div", { class: "slider" }, h("label", { text: st.filter + " · " + st.score }), op, range, out);
      controls.append(row);
      const xs = [], ys = [];
      for (let k = 0; k <= 40; k++) xs.push(lo + ((hi - lo) * k) / 40);
      function curve() {
        ys.length = 0;
        for (const x of xs) {
          const probe = { ...st, value: x, active: true };
          let n = 0, ok = 0;
          for (const t of sample) { if (!t.f[st.filter]) continue; n++; if (filterPass(t, st.filter, [probe])) ok++; }
          ys.push(n ? ok / n : 0);
        }
      }
      curve();
      const chart = lineChart(xs, ys, st.value, st.filter + " pass rate vs " + st.score);
      const holder = card(st.filter + " · " + st.score, chart.el);
      curves.append(holder);
      charts.push({ redraw: () => { curve(); const c = lineChart(xs, ys, st.value, st.filter + " pass rate vs " + st.score);
        holder.replaceChild(c.el, holder.lastChild); chart.move = c.move; }, move: (v) => chart.move(v) });
      const show = () => { out.textContent = (+st.value).toPrecision(4); };
      show();
      range.addEventListener("input", () => { st.value = +range.value; st.active = true; show(); charts[i].move(st.value); update(); });
      op.addEventListener("change", () => { st.op = op.value; st.active = true; charts[i].redraw(); update(); });
    });
    if (!state.length) controls.append(h("p", { class: "small", text: "no numeric scores found in the sample" }));
    b.append(controls, h("h3", { text: "Threshold sweeps" }), curves);

    function update() {
      const now = traceRate(state), before = traceRate(stored);
      overall.textContent = pct(now) + " ";
      const d = now - before;
      overall.append(h("span", { class: "delta " + (d >= 0 ? "up" : "down"), text: (d >= 0 ? "+" : "") + (100 * d).toFixed(1) + " pts" }));
      perFilter.replaceChildren(table(filters.map((f) => {
        let n = 0, a = 0, c = 0;
        for (const t of sample) { if (!t.f[f]) continue; n++; if (t.f[f][0]) a++; if (filterPass(t, f, state)) c++; }
        return { f, stored: n ? a / n : NaN, now: n ? c / n : NaN };
      }), [{ label: "filter", key: "f" }, { label: "stored", key: "stored", num: 1, fmt: pct }, { label: "with sliders", key: "now", num: 1, fmt: pct }]));
      const groups = [];
      for (const [kind, key] of [["domain", "d"], ["language", "l"]]) {
        for (const g of [...new Set(sample.map((t) => t[key]))].sort()) {
          groups.push({ g: kind + ": " + g, stored: traceRate(stored, (t) => t[key] === g), now: traceRate(state, (t) => t[key] === g) });
        }
      }
      perGroup.replaceChildren(table(groups.slice(0, 24), [{ label: "group", key: "g" },
        { label: "stored", key: "stored", num: 1, fmt: pct }, { label: "with sliders", key: "now", num: 1, fmt: pct }]));
      document.body.setAttribute("data-live-pass-rate", String(now));
    }
    update();
  }

  for (const fn of [renderFunnel, renderFilters, renderTuning, renderLengths, renderLanguages, renderVerdicts,
    renderDedup, renderMix, renderRuns]) {
    fn();
  }
  document.body.setAttribute("data-rendered", errors.length ? "with-errors" : "ok");
})();
