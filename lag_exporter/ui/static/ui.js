// lag-exporter web UI: refreshes the server-rendered page from /api/v1/... every poll,
// without a full reload. Names from Kafka are only ever set as text (textContent),
// never parsed as HTML. Without JavaScript the page shows the values of its load.
"use strict";
(function () {
  const body = document.body;
  const api = body.dataset.api;
  const refresh = Math.max(1, parseFloat(body.dataset.refresh || "15"));
  if (!api) return;

  const fmtCount = (v) => (v === null || v === undefined ? "–" : Math.round(v).toLocaleString("en-US"));
  function fmtDuration(s) {
    if (s === null || s === undefined) return "–";
    s = Math.max(0, Math.round(s));
    if (s < 60) return s + " s";
    if (s < 3600) { const m = Math.floor(s / 60), r = s % 60; return m >= 10 || !r ? m + " min" : m + " min " + r + " s"; }
    if (s < 86400) { const h = Math.floor(s / 3600), r = s % 3600; return r >= 60 ? h + " h " + Math.floor(r / 60) + " min" : h + " h"; }
    const d = Math.floor(s / 86400), r = s % 86400; return r >= 3600 ? d + " d " + Math.floor(r / 3600) + " h" : d + " d";
  }
  const fmtRate = (v) => (v === null || v === undefined ? "–" : v >= 100 ? Math.round(v).toLocaleString("en-US") + " msg/s" : v.toFixed(1) + " msg/s");
  const clock = (t) => (t ? new Date(t * 1000).toISOString().substring(11, 19) + " UTC" : "never");
  const SVG = "http://www.w3.org/2000/svg";

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const c of children) e.append(c);
    return e;
  }
  function badge(status) {
    const text = status || "none";
    return el("span", { class: "badge s-" + text }, text);
  }
  function lagSeconds(v, bound) {
    if (v === null || v === undefined) return el("span", { class: "muted" }, "–");
    const s = el("span", {}, (bound ? "≥ " : "") + fmtDuration(v));
    if (bound) s.title = "at least: the committed offset is older than the kept history";
    return s;
  }
  function points(times, values, w, h, pad) {
    const known = values.filter((v) => v !== null);
    if (times.length < 2 || !known.length) return "";
    // The same floor as the server's (svg.py FLOOR): a wobble stays small.
    const t0 = times[0], span = times[times.length - 1] - t0 || 1, top = Math.max(10, ...known);
    const out = [];
    times.forEach((t, i) => {
      const v = values[i];
      if (v === null) return;
      out.push(((t - t0) / span * (w - 2 * pad) + pad).toFixed(1) + "," + (h - pad - v / top * (h - 2 * pad)).toFixed(1));
    });
    return out.join(" ");
  }
  function spark(trend, key, kind) {
    const p = trend ? points(trend.times, trend[key], 100, 24, 1) : "";
    if (!p) return el("span", { class: "muted", title: "no history yet" }, "–");
    const svg = document.createElementNS(SVG, "svg");
    for (const [k, v] of Object.entries({ class: "spark " + kind, viewBox: "0 0 100 24", width: "100", height: "24", role: "img", preserveAspectRatio: "none" })) svg.setAttribute(k, v);
    svg.setAttribute("aria-label", kind === "lag" ? "lag" : "lag seconds");
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", p);
    svg.append(line);
    return svg;
  }
  function td(cls, ...children) { return el("td", cls ? { class: cls } : {}, ...children); }

  function groupRow(g) {
    const name = td("name", el("a", { href: g.url }, g.group),
      el("div", { class: "muted small" }, g.cluster + " · " + g.topics.slice(0, 3).join(", ") + (g.topics.length > 3 ? " …" : "")));
    const members = el("span", g.members === 0 && g.total_lag > 0 ? { class: "bad" } : {}, g.members === null ? "?" : String(g.members));
    return el("tr", { class: "row s-" + (g.status || "none") },
      td("", badge(g.status)), name,
      td("num", ...(g.growing ? [el("span", { class: "up", title: "lag grew over the sparkline's span" }, "\u25B2 ")] : []), fmtCount(g.total_lag)),
      td("", spark(g.trend, "lag", "lag")),
      td("num", lagSeconds(g.max_lag_seconds, g.lag_seconds_lower_bound)), td("", spark(g.trend, "lag_seconds", "secs")),
      td("num hide-s", fmtRate(g.consumption_rate) + " / " + fmtRate(g.production_rate)),
      td("num hide-s", members), td("num", g.firing_alerts ? String(g.firing_alerts) : ""));
  }
  function setCount(key, text) {
    const b = document.querySelector('[data-k="' + key + '"]');
    if (b) b.textContent = text;
  }

  function renderOverview(doc) {
    const c = doc.counts;
    setCount("clusters_up", c.clusters_up + "/" + c.clusters);
    setCount("groups", fmtCount(c.groups));
    for (const s of ["ERR", "WARN", "OK"]) setCount(s, fmtCount(c.by_status[s]));
    setCount("group_partitions", fmtCount(c.group_partitions));
    setCount("firing_alerts", fmtCount(c.firing_alerts));
    const rows = document.querySelectorAll("#clusters tbody tr");
    doc.clusters.forEach((cl, i) => {
      const tr = rows[i];
      if (!tr) return;
      const state = cl.up ? (cl.partial ? "partial" : "up") : "down";
      tr.children[1].replaceChildren(el("span", { class: "badge u-" + state }, state));
      tr.children[2].textContent = clock(cl.last_poll_at);
      tr.children[3].textContent = String(cl.brokers);
      tr.children[4].textContent = fmtCount(cl.groups);
    });
    const tbody = document.querySelector("#groups tbody");
    const trs = doc.groups.map(groupRow);
    if (!trs.length) trs.push(el("tr", {}, el("td", { colspan: "9", class: "muted" }, "No consumer group matches.")));
    tbody.replaceChildren(...trs);
    document.getElementById("matched").textContent = fmtCount(doc.matched) + " groups, worst first";
  }

  function partitionRow(p) {
    const owner = p.client_id === null
      ? el("span", { class: "muted" }, "none")
      : el("span", {}, p.client_id);
    const ownerCell = td("", owner);
    if (p.host !== null) ownerCell.append(el("div", { class: "muted small" }, p.host));
    if (p.member_id !== null) ownerCell.append(el("div", { class: "muted small member" }, p.member_id));
    return el("tr", { class: "row s-" + (p.status || "none") },
      td("name", p.topic), td("num", String(p.partition)),
      td("num hide-s", fmtCount(p.committed_offset)), td("num hide-s", fmtCount(p.log_end_offset)),
      td("num", fmtCount(p.lag)), td("num", lagSeconds(p.lag_seconds, p.lag_seconds_lower_bound)),
      td("", badge(p.status), el("div", { class: "why-s small" }, p.reason)), td("reason hide-s", p.reason), ownerCell);
  }
  function renderChart(trend) {
    const fig = document.getElementById("chart");
    const svg = fig && fig.querySelector("svg.chart");
    if (!svg || !trend) return;
    const w = 600, h = 160;
    const lag = svg.querySelector("polyline.lag"), secs = svg.querySelector("polyline.secs");
    if (lag) lag.setAttribute("points", points(trend.times, trend.lag, w, h, 4));
    if (secs) secs.setAttribute("points", points(trend.times, trend.lag_seconds, w, h, 4));
    const ticks = [...svg.querySelectorAll("text")].filter((t) => !t.classList.length);
    ticks.forEach((t, i) => {
      const at = trend.times[0] + (trend.times[trend.times.length - 1] - trend.times[0]) * i / (ticks.length - 1);
      t.textContent = clock(at).replace(" UTC", "");
    });
    const top = svg.querySelector("text.lag-label");
    if (top) top.textContent = "lag max " + fmtCount(Math.max(...trend.lag));
    const known = trend.lag_seconds.filter((v) => v !== null);
    const stop = svg.querySelector("text.secs-label");
    if (stop && known.length) stop.textContent = "lag seconds max " + fmtDuration(Math.max(...known));
  }
  function renderGroup(doc) {
    document.getElementById("g-status").replaceChildren(badge(doc.status));
    setCount("total_lag", fmtCount(doc.total_lag));
    const secs = document.querySelector('[data-k="max_lag_seconds"]');
    if (secs) secs.replaceChildren(lagSeconds(doc.max_lag_seconds, doc.lag_seconds_lower_bound));
    setCount("rates", fmtRate(doc.consumption_rate));
    setCount("members", doc.members === null ? "?" : String(doc.members.length));
    setCount("last_poll", clock(doc.last_poll_at));
    document.querySelector("#partitions tbody").replaceChildren(...doc.partitions.map(partitionRow));
    // Topics: lag summed over the partitions, consumption and catch-up per topic.
    const lagByTopic = {};
    for (const p of doc.partitions) lagByTopic[p.topic] = (lagByTopic[p.topic] || 0) + (p.lag || 0);
    for (const tr of document.querySelectorAll("#topics tbody tr")) {
      const topic = tr.children[0].textContent, rates = doc.topics[topic];
      if (!rates) continue;
      tr.children[1].textContent = fmtCount(lagByTopic[topic] || 0);
      tr.children[2].textContent = fmtRate(rates.consumption_rate);
      tr.children[3].textContent = rates.catchup_seconds === null ? "not catching up" : fmtDuration(rates.catchup_seconds);
    }
    renderChart(doc.trend);
  }

  const live = document.getElementById("live");
  let failures = 0;
  async function tick() {
    try {
      const r = await fetch(api, { headers: { Accept: "application/json" }, cache: "no-store" });
      if (!r.ok) throw new Error("HTTP " + r.status);
      const doc = await r.json();
      if (body.dataset.page === "overview") renderOverview(doc);
      else if (body.dataset.page === "group") renderGroup(doc);
      failures = 0;
      live.textContent = "live · updated " + clock(doc.generated_at);
    } catch (e) {
      failures += 1;
      live.textContent = "not updated (" + e.message + "), retrying";
    }
    setTimeout(tick, refresh * 1000 * Math.min(8, 2 ** failures));
  }
  setTimeout(tick, refresh * 1000);
  live.textContent = "live · every " + fmtDuration(refresh);
})();
