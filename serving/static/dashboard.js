// The live dashboard: every figure and chart comes from the API. The snapshot
// arrives over Server-Sent Events (/api/stream/metrics), one event per new
// version; the time series start from /api/metrics/history and grow with each
// event; recent transactions and pipeline health are fetched when they can
// have changed. No build step: plain JavaScript and the vendored Chart.js.
"use strict";

const MAX_POINTS = 600;
const GOLD = "#e6b450", BLUE = "#59c2ff", GREEN = "#7fd962", RED = "#f07178", DIM = "#8a9199";
const state = { version: null, lastRecent: 0, lastSeq: null, recentTimer: null };

Chart.defaults.color = DIM;
Chart.defaults.borderColor = "#253340";
Chart.defaults.animation = false;
Chart.defaults.maintainAspectRatio = false;

function chart(id, config) {
  const c = new Chart(document.getElementById(id), config);
  c.canvas.dataset.rendered = "false";
  return c;
}

function rendered(c) {
  c.update("none");
  c.canvas.dataset.rendered = "true";
}

const timeAxis = { type: "category", ticks: { maxTicksLimit: 8, autoSkip: true } };
const charts = {
  circulation: chart("chart-circulation", {
    type: "line",
    data: { labels: [], datasets: [
      { label: "circulation", data: [], borderColor: GOLD, pointRadius: 0, tension: 0.2 },
      { label: "supply", data: [], borderColor: DIM, borderDash: [4, 4], pointRadius: 0 }] },
    options: { scales: { x: timeAxis, y: { beginAtZero: true } } },
  }),
  velocity: chart("chart-velocity", {
    type: "line",
    data: { labels: [], datasets: [
      { label: "1m", data: [], borderColor: RED, pointRadius: 0 },
      { label: "1h", data: [], borderColor: BLUE, pointRadius: 0 },
      { label: "1d", data: [], borderColor: GREEN, pointRadius: 0 }] },
    options: { scales: { x: timeAxis, y: { beginAtZero: true } } },
  }),
  top: chart("chart-top", {
    type: "bar",
    data: { labels: [], datasets: [{ label: "transfers", data: [], backgroundColor: GOLD }] },
    options: { indexAxis: "y", plugins: { legend: { display: false } } },
  }),
  temperature: chart("chart-temperature", {
    type: "doughnut",
    data: { labels: ["cold", "warm", "hot"], datasets: [{ data: [0, 0, 0], backgroundColor: [BLUE, GOLD, RED] }] },
  }),
  stages: chart("chart-stages", {
    type: "bar",
    data: { labels: [], datasets: [{ label: "ducats", data: [], backgroundColor: GREEN }] },
    options: { plugins: { legend: { display: false } }, scales: { y: { type: "logarithmic" } } },
  }),
  levels: chart("chart-levels", {
    type: "bar",
    data: { labels: [], datasets: [{ label: "ducats", data: [], backgroundColor: BLUE }] },
    options: { plugins: { legend: { display: false } }, scales: { y: { type: "logarithmic" } } },
  }),
};
window.dashboard = { charts, state };

const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
const text = (id, value) => { document.getElementById(id).textContent = value; };
const clock = (iso) => (iso ? iso.replace(/^.*T/, "").replace(/(\.\d+)?(Z|[+-]\d\d:\d\d)$/, "") : "–");

function pushPoint(label, circulation, supply, v) {
  const c = charts.circulation, w = charts.velocity;
  c.data.labels.push(label); w.data.labels.push(label);
  c.data.datasets[0].data.push(circulation); c.data.datasets[1].data.push(supply);
  w.data.datasets[0].data.push(v["1m"]); w.data.datasets[1].data.push(v["1h"]); w.data.datasets[2].data.push(v["1d"]);
  for (const ch of [c, w]) {
    if (ch.data.labels.length > MAX_POINTS) {
      ch.data.labels.shift();
      ch.data.datasets.forEach((d) => d.data.shift());
    }
  }
}

function showSnapshot(s, stale) {
  state.version = s.version;
  document.body.dataset.version = String(s.version);
  text("version", "v" + s.version);
  text("generated", clock(s.generatedAt));
  document.getElementById("stale").hidden = !stale;
  for (const el of document.querySelectorAll("[data-field]")) el.textContent = fmt(s[el.dataset.field]);
  const v = s.velocity || {};
  for (const w of ["1m", "1h", "1d"]) text("fig-velocity-" + w, v[w] ? v[w].velocity.toFixed(4) : "–");
  text("fig-seq", fmt(s.position && s.position.seq));

  pushPoint(clock(s.generatedAt), s.circulation, s.supply,
            { "1m": v["1m"] ? v["1m"].velocity : 0, "1h": v["1h"] ? v["1h"].velocity : 0,
              "1d": v["1d"] ? v["1d"].velocity : 0 });
  rendered(charts.circulation); rendered(charts.velocity);

  const top = s.topCirculating || [];
  charts.top.data.labels = top.map((t) => t.ducatId);
  charts.top.data.datasets[0].data = top.map((t) => t.transfers);
  rendered(charts.top);

  const t = s.temperature || {};
  charts.temperature.data.datasets[0].data = ["cold", "warm", "hot"].map((k) => t[k] || 0);
  rendered(charts.temperature);

  const c = s.consciousness || {};
  const stages = Object.entries(c.stages || {}).sort((a, b) => Number(a[0]) - Number(b[0]));
  charts.stages.data.labels = stages.map(([k]) => "stage " + k);
  charts.stages.data.datasets[0].data = stages.map(([, n]) => n);
  rendered(charts.stages);
  const levels = Object.entries(c.levels || {}).sort((a, b) => Number(a[0]) - Number(b[0]));
  charts.levels.data.labels = levels.map(([k]) => k);
  charts.levels.data.datasets[0].data = levels.map(([, n]) => n);
  rendered(charts.levels);

  const seq = s.position ? s.position.seq : null;
  if (seq !== state.lastSeq) {  // at most one fetch a second, and the last change is never skipped
    state.lastSeq = seq;
    const wait = Math.max(0, 1000 - (Date.now() - state.lastRecent));
    clearTimeout(state.recentTimer);
    state.recentTimer = setTimeout(() => { state.lastRecent = Date.now(); loadRecent(); }, wait);
  }
}

async function getJSON(url) {
  const r = await fetch(url, { headers: { Accept: "application/json" } });
  if (!r.ok) throw new Error(url + " answered " + r.status);
  return r.json();
}

async function loadRecent() {
  try {
    const page = await getJSON("/api/transactions/recent?limit=15");
    const body = document.querySelector("#recent tbody");
    body.replaceChildren(...page.transactions.map((t) => {
      const tr = document.createElement("tr");
      for (const v of [t.seq, clock(t.timestamp), t.from, t.to, t.ducatCount, t.consciousnessImpact.toFixed(3),
                       t.transactionId]) {
        const td = document.createElement("td"); td.textContent = String(v); tr.appendChild(td);
      }
      return tr;
    }));
  } catch (e) { console.warn(e); }
}

async function loadHealth() {
  try {
    const p = await getJSON("/api/pipeline");
    text("health-lag", p.ledgerLag === null ? "unknown" : fmt(p.ledgerLag) + " records");
    text("health-workers", p.workers === null ? "unknown" : p.workers.length + " ready");
    text("health-breakers", Object.entries(p.breakers).map(([k, v]) => k + " " + v).join(", "));
  } catch (e) { text("health-lag", "unknown"); }
}

async function loadHistory() {
  try {
    const h = await getJSON("/api/metrics/history?minutes=30");
    for (const p of h.points) pushPoint(clock(p.ts), p.circulation, p.supply, p.velocity);
  } catch (e) { console.warn(e); }
}

function cells(tr, values) {
  for (const v of values) {
    const td = document.createElement("td");
    if (v instanceof Node) td.appendChild(v); else td.textContent = String(v);
    tr.appendChild(td);
  }
  return tr;
}

async function loadNetwork() {
  let n;
  try { n = await getJSON("/api/network/intelligence?top=10&communities=10"); } catch (e) { return; }
  text("network-at", "run " + n.runId + " at " + clock(n.computedAt) + ", seq " + fmt(n.seq));
  text("network-summary", fmt(n.graph.nodes) + " holders, " + fmt(n.graph.edges) + " edges, " +
       fmt(n.components.count) + (n.components.count === 1 ? " component" : " components") + " (largest " + fmt(n.components.largest) + "), " +
       fmt(n.communityCount) + " communities; computed in " + fmt(n.computeMs) + " ms");
  document.querySelector("#influencers tbody").replaceChildren(...n.influence.map((h, i) =>
    cells(document.createElement("tr"), [i + 1, h.holder, h.pagerank.toFixed(5)])));
  document.querySelector("#communities tbody").replaceChildren(...n.communities.map((c) =>
    cells(document.createElement("tr"), ["#" + c.id, fmt(c.size),
      c.new ? "new" : "×" + c.growth + (c.growing ? " growing" : ""), c.sample.slice(0, 4).join(", ")])));
  document.getElementById("panel-network").dataset.rendered = "true";
}

async function acknowledge(id) {
  const key = document.getElementById("ack-key").value, by = document.getElementById("ack-by").value;
  const note = document.getElementById("ack-note").value;
  if (!key || !by) { text("ack-result", "give your API key and your name first"); return; }
  sessionStorage.setItem("ducats-key", key);
  const r = await fetch("/api/alerts/" + encodeURIComponent(id) + "/ack", {
    method: "POST", headers: { "Content-Type": "application/json", Authorization: "Bearer " + key },
    body: JSON.stringify(note ? { by, note } : { by }) });
  const body = await r.json();
  text("ack-result", r.ok ? id + " acknowledged by " + body.acknowledged.by : r.status + ": " + body.detail);
  loadAlerts();
}

async function loadAlerts() {
  let a;
  try { a = await getJSON("/api/alerts?limit=10"); } catch (e) { return; }
  const open = a.alerts.filter((x) => x.state === "open").length;
  const badge = document.getElementById("alerts-open");
  badge.textContent = open + " open"; badge.className = "badge " + (open ? "warn" : "on");
  document.querySelector("#alerts tbody").replaceChildren(...a.alerts.map((x) => {
    let ack;
    if (x.acknowledged) ack = x.acknowledged.by + " at " + clock(x.acknowledged.at);
    else {
      ack = document.createElement("button"); ack.className = "ack-button"; ack.type = "button";
      ack.textContent = "acknowledge"; ack.dataset.alert = x.alertId;
      ack.addEventListener("click", () => acknowledge(x.alertId));
    }
    const tr = cells(document.createElement("tr"), [x.alertId, x.state, clock(x.startedAt), fmt(x.peak),
      x.baseline.median + " (≤ " + x.baseline.upper + ")", fmt(x.transfers), ack]);
    tr.className = x.state;
    return tr;
  }));
  document.getElementById("panel-alerts").dataset.rendered = "true";
}

function connect() {
  const live = document.getElementById("live");
  const source = new EventSource("/api/stream/metrics");
  source.addEventListener("open", () => { live.textContent = "live"; live.className = "badge on"; });
  source.addEventListener("error", () => { live.textContent = "reconnecting"; live.className = "badge off"; });
  source.addEventListener("snapshot", (ev) => {
    const s = JSON.parse(ev.data);
    if (s.version !== state.version) showSnapshot(s, false);
    else document.getElementById("stale").hidden = true;
  });
}

async function start() {
  await loadHistory();
  try {  // the first figures at once, even before the stream's first event
    const s = await getJSON("/api/metrics/current");
    showSnapshot(s, s.stale);
  } catch (e) { console.warn(e); }
  connect();
  loadRecent();
  loadHealth();
  setInterval(loadHealth, 5000);
  document.getElementById("ack-key").value = sessionStorage.getItem("ducats-key") || "";
  loadNetwork(); loadAlerts();
  setInterval(loadNetwork, 10000);
  setInterval(loadAlerts, 3000);
}

start();
