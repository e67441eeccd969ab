// The dashboard of `posledger serve` (docs/service.md, Dashboard): plain modules, no build.
// It reads the /v1 API with the key the user gives (kept in this browser's localStorage)
// and follows /v1/stream to refresh what an entry changed, without a reload.

const KEY = "posledger.key";
const $ = (selector) => document.querySelector(selector);
let key = localStorage.getItem(KEY);
let stream = null;
let pending = new Set();
let timer = null;

async function api(path) {
  const answer = await fetch(path, { headers: { Authorization: `Bearer ${key}` } });
  if (answer.status === 401) {
    forget("That key is unknown or revoked.");
    throw new Error("unauthorized");
  }
  if (!answer.ok) {
    const problem = await answer.json().catch(() => ({}));
    const error = new Error(problem.detail || answer.statusText);
    error.status = answer.status;
    throw error;
  }
  return answer.json();
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text ?? "-";
  if (className) td.className = className;
  return td;
}

function signed(value) {
  const n = Number(value);
  return n > 0 ? "n pos" : n < 0 ? "n neg" : "n";
}

function fill(table, rows, empty, render) {
  const body = $(`#${table} tbody`);
  body.replaceChildren();
  if (!rows.length) {
    const tr = document.createElement("tr");
    tr.className = "empty";
    const td = cell(empty);
    td.colSpan = $(`#${table} thead tr`).children.length;
    tr.append(td);
    body.append(tr);
    return;
  }
  for (const row of rows) {
    const tr = document.createElement("tr");
    tr.append(...render(row));
    body.append(tr);
  }
}

async function slots() {
  const rows = await api("/v1/positions");
  rows.sort((a, b) => a.strategy.localeCompare(b.strategy) || a.instrument.localeCompare(b.instrument));
  fill("slots", rows, "No open slot.", (s) => [
    cell(s.strategy), cell(s.account), cell(s.instrument), cell(s.position_side),
    cell(s.quantity, "n"), cell(s.avg_entry_price, "n"),
    cell(s.unrealized_pnl, signed(s.unrealized_pnl)), cell(s.realized_pnl, signed(s.realized_pnl)),
    cell(s.pnl_currency),
  ]);
}

async function trades() {
  const rows = (await api("/v1/trades?limit=50")).reverse();
  fill("trades", rows, "No trade yet.", (t) => [
    cell(t.trade_id, "n"), cell(t.strategy), cell(t.instrument), cell(t.side), cell(t.status),
    cell(t.peak_quantity, "n"), cell(t.realized_pnl, signed(t.realized_pnl)),
    cell(t.close_reason), cell(t.closed_at ? t.closed_at.replace("T", " ").slice(0, 19) : ""),
  ]);
}

async function reconciliation() {
  let rows;
  try {
    rows = await api("/v1/reconciliations?last=50");
  } catch (error) {
    if (error.status === 403) {
      fill("recon", [], "An admin key sees the reconciliations.", () => []);
      return;
    }
    throw error;
  }
  const byAccount = new Map();
  for (const check of rows) {  // newest run first
    const seen = byAccount.get(check.account);
    if (seen && seen.run !== check.run) continue;
    const entry = seen || { account: check.account, run: check.run, at: check.recorded_at, off: 0 };
    if (check.kind !== "agree") entry.off += 1;
    byAccount.set(check.account, entry);
  }
  const accounts = [...byAccount.values()].sort((a, b) => a.account.localeCompare(b.account));
  fill("recon", accounts, "No reconciliation yet.", (r) => [
    cell(r.account), cell(r.at.replace("T", " ").slice(0, 19)),
    cell(r.off ? `${r.off} difference${r.off > 1 ? "s" : ""}` : "agrees", r.off ? "neg" : "pos"),
  ]);
}

async function commands() {
  const [waiting, failed] = await Promise.all([
    api("/v1/commands?status=pending"), api("/v1/commands?status=failed&limit=20"),
  ]);
  fill("commands", [...waiting, ...failed], "Nothing pending or failed.", (c) => [
    cell(c.status, c.status === "failed" ? "neg" : ""), cell(c.strategy), cell(c.kind),
    cell(c.instrument), cell(c.reason),
  ]);
}

async function anomalies() {
  const rows = (await api("/v1/anomalies")).slice(-50).reverse();
  fill("anomalies", rows, "No anomaly.", (a) => [
    cell(a.seq, "n"), cell(a.kind), cell(a.strategy), cell(a.instrument), cell(a.quantity, "n"),
  ]);
}

const COLOURS = ["#58a6ff", "#3fb950", "#d29922", "#f778ba", "#a371f7", "#79c0ff", "#ffa657"];

async function equity() {
  const closed = (await api("/v1/trades?status=closed&limit=10000"))
    .filter((t) => t.closed_at)
    .sort((a, b) => a.closed_at.localeCompare(b.closed_at));
  const curves = new Map();
  for (const t of closed) {
    const curve = curves.get(t.strategy) || [{ at: Date.parse(t.opened_at), total: 0 }];
    const total = curve[curve.length - 1].total + Number(t.realized_pnl);
    curve.push({ at: Date.parse(t.closed_at), total });
    curves.set(t.strategy, curve);
  }
  const box = $("#equity");
  box.replaceChildren();
  if (!curves.size) {
    box.textContent = "No closed trade yet.";
    return;
  }
  const points = [...curves.values()].flat();
  const [x0, x1] = [Math.min(...points.map((p) => p.at)), Math.max(...points.map((p) => p.at))];
  const [y0, y1] = [Math.min(0, ...points.map((p) => p.total)), Math.max(0, ...points.map((p) => p.total))];
  const W = 1000, H = 220, pad = 8;
  const x = (at) => pad + ((at - x0) / Math.max(1, x1 - x0)) * (W - 2 * pad);
  const y = (v) => H - pad - ((v - y0) / Math.max(1e-9, y1 - y0)) * (H - 2 * pad);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  const zero = document.createElementNS(svg.namespaceURI, "line");
  for (const [k, v] of Object.entries({ x1: 0, x2: W, y1: y(0), y2: y(0), stroke: "#2a3541" })) {
    zero.setAttribute(k, v);
  }
  svg.append(zero);
  const legend = document.createElement("div");
  legend.className = "legend";
  [...curves.keys()].sort().forEach((strategy, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const line = document.createElementNS(svg.namespaceURI, "polyline");
    line.setAttribute("points", curves.get(strategy).map((p) => `${x(p.at)},${y(p.total)}`).join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", colour);
    line.setAttribute("stroke-width", "2");
    line.setAttribute("vector-effect", "non-scaling-stroke");
    line.dataset.strategy = strategy;
    svg.append(line);
    const label = document.createElement("span");
    label.style.color = colour;
    const last = curves.get(strategy).at(-1).total;
    label.textContent = `${strategy} ${last.toFixed(2)}`;
    legend.append(label);
  });
  box.append(svg, legend);
}

const PANELS = { slots, trades, reconciliation, commands, anomalies, equity };

function refresh(names) {
  for (const name of names) pending.add(name);
  if (timer) return;
  timer = setTimeout(async () => {
    const now = [...pending];
    pending = new Set();
    timer = null;
    await Promise.all(now.map((name) => PANELS[name]().catch((e) => console.warn(name, e.message))));
  }, 50);
}

function follow(after) {
  stream?.close();
  const url = `/v1/stream?access_token=${encodeURIComponent(key)}&after_seq=${after}`;
  stream = new EventSource(url);
  stream.onopen = () => { $("#live").textContent = "live"; $("#live").classList.add("on"); };
  stream.onerror = () => { $("#live").textContent = "reconnecting"; $("#live").classList.remove("on"); };
  const changed = (event) => {
    const kind = event.type;
    const names = new Set(["slots"]);
    if (kind === "fill" || kind === "transfer" || kind === "reconcile") {
      names.add("trades"); names.add("equity"); names.add("anomalies");
    }
    if (kind === "reconcile") names.add("reconciliation");
    names.add("commands");
    refresh(names);
  };
  for (const kind of ["fill", "mark", "order", "cancel", "transfer", "reconcile", "halt", "resume",
    "bracket", "command_ack", "command_failed", "sweep", "account", "instrument", "strategy"]) {
    stream.addEventListener(kind, changed);
  }
}

async function open() {
  $("#login").hidden = true;
  $("#board").hidden = false;
  $("#forget").hidden = false;
  const head = await api("/v1/head");
  $("#who").textContent = head.strategy ? `strategy ${head.strategy}` : "admin";
  refresh(Object.keys(PANELS));
  follow(head.seq);
}

function forget(why) {
  localStorage.removeItem(KEY);
  key = null;
  stream?.close();
  $("#board").hidden = true;
  $("#forget").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = why || "";
}

$("#login").addEventListener("submit", (event) => {
  event.preventDefault();
  key = $("#key").value.trim();
  localStorage.setItem(KEY, key);
  open().catch((error) => forget(error.message));
});
$("#forget").addEventListener("click", () => forget());

if (key) open().catch((error) => forget(error.message)); else forget();
