// psod's status page: polls /status.json and /history.json (served by
// server/http.c) every 2 s and redraws the summary, the plot (uPlot) and
// the particle table. No state but what the daemon returns.
"use strict";

const $ = (id) => document.getElementById(id);
const fmt = (v, d = 4) => (v === null || v === undefined ? "-" : Number(v).toPrecision(d));
const pct = (v) => (v === null || v === undefined ? "n/a" : (100 * v).toFixed(2) + " %");
let plot = null;

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
}

function state(p) {
  const s = p.active ? "active" : p.evicted ? "evicted" : "left";
  return p.excluded ? `${s}, excluded (${p.strikes} strikes)` : s;
}

function roundRate(h) {
  // Rounds per second over the last minute of history.
  const n = h.round.length;
  if (n < 2) return null;
  const t1 = h.time[n - 1];
  let i = n - 2;
  while (i > 0 && t1 - h.time[i] < 60) i--;
  const dt = t1 - h.time[i];
  return dt > 0 ? (h.round[n - 1] - h.round[i]) / dt : null;
}

// psod --verify-best: what became of the candidate global bests.
function verifySummary(v) {
  if (!v || v.adopted + v.refused + v.ignored + (v.undecided || 0) === 0) return "";
  return `; verified best: ${v.adopted} adopted, ${v.refused} refused, ` +
    `${v.undecided || 0} without a quorum, ${v.ignored} verdicts ignored; ` +
    `${v.struck || 0} verifiers struck, ${v.excluded || 0} workers excluded`;
}

function drawSummary(st, h) {
  $("version").textContent = st.version;
  const rate = roundRate(h);
  $("summary").textContent =
    `${st.strategy}, round ${st.round}` + (rate === null ? "" : ` (${rate.toFixed(2)} rounds/s)`) +
    `, ${st.active} of ${st.particles} particles active (round size ${st.workers_expected})` +
    `, ${st.param_count} parameters; global loss ${fmt(st.global_best_loss)}` +
    ` (particle ${st.global_best_particle}), test accuracy ${pct(st.global_accuracy)}` +
    `; up ${Math.round(st.uptime_seconds)} s; ${st.peers_connected} connections` +
    `, ${st.encrypted ? "encrypted (CURVE)" : "NOT encrypted"}; ${st.errors_sent} errors sent` +
    verifySummary(st.verify);
  const waiting = st.particle.filter((p) => p.active && !p.pushed).map((p) => p.worker);
  const missing = st.workers_expected - st.particles;
  let w = "";
  if (st.pushed_this_round > 0 && waiting.length)
    w = `Round ${st.round} waits for: ${waiting.join(", ")}`;
  if (missing > 0) w += (w ? "; " : "") + `waiting for ${missing} more workers to join`;
  $("waits").textContent = w;
}

function drawParticles(st) {
  const body = $("particles").tBodies[0];
  body.replaceChildren();
  for (const p of st.particle) {
    const tr = document.createElement("tr");
    const s = state(p);
    tr.className = s + (p.active && !p.pushed && st.pushed_this_round > 0 ? " waiting" : "");
    cell(tr, p.id);
    cell(tr, p.worker + (p.id === st.global_best_particle ? " (best)" : ""));
    cell(tr, s);
    cell(tr, p.wire);
    cell(tr, fmt(p.last_loss));
    cell(tr, fmt(p.best_loss));
    cell(tr, p.age_seconds === null ? "-" : p.age_seconds.toFixed(1) + " s ago");
    cell(tr, p.pushes);
    cell(tr, p.pushed ? "pushed" : p.active ? "round waits for it" : "-");
    body.appendChild(tr);
  }
}

function drawShards(st) {
  $("shards-section").hidden = st.shards.length === 0;
  const body = $("shards").tBodies[0];
  body.replaceChildren();
  for (const q of st.shards) {
    const tr = document.createElement("tr");
    for (const v of [q.index, q.endpoint, q.offset, q.length, q.round]) cell(tr, v);
    cell(tr, st.shard_index ? "-" : q.connected ? "in the swarm" : "LOST: rounds wait");
    body.appendChild(tr);
  }
}

function drawPlot(h) {
  const el = $("plot");
  if (typeof uPlot === "undefined") {
    el.textContent = "(this psod was built without its plotting library, uPlot: " +
      "npm was not available at build time)";
    return;
  }
  const acc = h.global_acc.map((v) => (v === null ? null : 100 * v));
  const data = [h.round, h.global_loss, h.mean_loss, acc];
  if (!plot) {
    plot = new uPlot({
      width: Math.min(900, window.innerWidth - 40), height: 300,
      scales: { x: { time: false } },
      axes: [{ label: "round" }, { label: "loss", scale: "loss" },
             { label: "accuracy %", scale: "acc", side: 1, grid: { show: false } }],
      series: [{ label: "round" },
               { label: "global loss", scale: "loss", stroke: "#1f77b4", width: 2 },
               { label: "mean particle loss", scale: "loss", stroke: "#ff7f0e" },
               { label: "test accuracy %", scale: "acc", stroke: "#2ca02c", width: 2 }],
    }, data, el);
  } else {
    plot.setData(data);
  }
}

async function refresh() {
  try {
    const [st, h] = await Promise.all(
      ["/status.json", "/history.json"].map((u) => fetch(u).then((r) => {
        if (!r.ok) throw new Error(`${u}: HTTP ${r.status}`);
        return r.json();
      })));
    $("problem").hidden = true;
    drawSummary(st, h);
    drawParticles(st);
    drawShards(st);
    drawPlot(h);
    document.body.dataset.round = st.round;
  } catch (e) {
    $("problem").hidden = false;
    $("problem").textContent = `cannot reach psod: ${e.message}`;
  }
}

refresh();
setInterval(refresh, 2000);
