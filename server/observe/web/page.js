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

// A worker psod has not heard from for longer than its heartbeat interval
// (and a half) missed a beat: shown silent at once, not only when psod
// evicts it (--liveness intervals later).
function state(p, st) {
  const beat = (st.heartbeat_ms || 0) / 1000;
  let s = p.active ? "active" : p.evicted ? "evicted" : "left";
  if (p.active && beat > 0 && p.age_seconds !== null && p.age_seconds > 1.5 * beat)
    s = `silent ${p.age_seconds.toFixed(0)} s`;
  return p.excluded ? `${s}, excluded (${p.strikes} strikes)` : s;
}

function roundRate(st, h) {
  // Rounds per second over the last 10 s up to now (the daemon's uptime,
  // the history's clock): it falls to zero when no round closes.
  const n = h.round.length;
  const now = st.uptime_seconds;
  if (n < 1 || !(now > 0)) return null;
  let from = Math.max(0, now - 10);
  let i = n - 1;
  while (i >= 0 && h.time[i] > from) i--;
  // Rounds closed after `from`: against the last point before it, or, when
  // the history starts inside the window, against its first point.
  let base = 0;
  if (i >= 0) base = h.round[i];
  else if (h.time[0] > 0) { base = h.round[0]; from = h.time[0]; }
  const span = now - from;
  return span > 0 ? Math.max(0, st.round - base) / span : null;
}

// psod --verify-best: what became of the candidate global bests.
function verifySummary(v) {
  if (!v || v.adopted + v.refused + v.ignored + (v.undecided || 0) === 0) return "";
  return `; verified best: ${v.adopted} adopted, ${v.refused} refused, ` +
    `${v.undecided || 0} without a quorum, ${v.ignored} verdicts ignored; ` +
    `${v.struck || 0} verifiers struck, ${v.excluded || 0} workers excluded`;
}

// --checkpoint-dir: the last checkpoint's round and age, and, loudly,
// checkpoints that fail (a full disk).
function checkpointSummary(c) {
  if (!c || (c.age_seconds === null && !c.failures)) return "";
  let s = c.age_seconds === null ? "; no checkpoint yet"
    : `; checkpoint of round ${c.round}, ${Math.round(c.age_seconds)} s ago`;
  if (c.error) s += `; CHECKPOINTS FAILING (${c.failures}): ${c.error}`;
  else if (c.failures) s += ` (${c.failures} failed earlier)`;
  return s;
}

function drawSummary(st, h) {
  $("version").textContent = st.version;
  const rate = roundRate(st, h);
  $("summary").textContent =
    `${st.strategy}, round ${st.round}` + (rate === null ? "" : ` (${rate.toFixed(2)} rounds/s)`) +
    `, ${st.active} of ${st.particles} particles active (round size ${st.workers_expected})` +
    `, ${st.param_count} parameters; global loss ${fmt(st.global_best_loss)}` +
    ` (particle ${st.global_best_particle}), test accuracy ${pct(st.global_accuracy)}` +
    `; up ${Math.round(st.uptime_seconds)} s; ${st.peers_connected} connections` +
    `, ${st.encrypted ? "encrypted (CURVE)" : "NOT encrypted"}; ${st.errors_sent} errors sent` +
    verifySummary(st.verify) + checkpointSummary(st.checkpoint);
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
    const s = state(p, st);
    tr.className = s.split(" ")[0].replace(",", "") +
      (p.active && !p.pushed && st.pushed_this_round > 0 ? " waiting" : "");
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
  // A log axis for the loss (it falls by orders of magnitude early, then
  // creeps): values that are not positive are left out.
  const pos = (a) => a.map((v) => (v === null || v <= 0 ? null : v));
  const data = [h.round, pos(h.global_loss), pos(h.mean_loss), acc];
  if (!plot) {
    plot = new uPlot({
      width: Math.min(900, window.innerWidth - 40), height: 300,
      scales: { x: { time: false }, loss: { distr: 3 }, acc: { range: [0, 100] } },
      axes: [{ label: "round" }, { label: "loss (log)", scale: "loss" },
             { label: "accuracy %", scale: "acc", side: 1, grid: { show: false } }],
      series: [{ label: "round" },
               { label: "global loss", scale: "loss", stroke: "#1f77b4", width: 2 },
               { label: "mean particle loss", scale: "loss", stroke: "#ff7f0e" },
               { label: "test accuracy %", scale: "acc", stroke: "#2ca02c", width: 2 }],
    }, data, el);
  } else {
    plot.setData(data);
  }
  // What the axes show, for a reader of the DOM (tests/http-test.sh).
  document.body.dataset.accAxis = `${plot.scales.acc.min}..${plot.scales.acc.max}`;
  document.body.dataset.lossAxis = plot.scales.loss.distr === 3 ? "log" : "linear";
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
