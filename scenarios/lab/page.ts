/**
 * The lab's page: one self-contained HTML document (no build step, no CDN)
 * that listens to `GET /lab/events` and draws the nodes, the transactions, the
 * in-doubt lists with their running timers, the latest WAL records, the step
 * queue and a live sequence diagram. It never polls the nodes: only its own
 * clock ticks, to run the blocked-for timers. With a token, open it as
 * /lab#token=T (a fragment never reaches a server).
 */
export const LAB_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>twopc lab</title>
<style>
  body { font: 13px/1.4 system-ui, sans-serif; margin: 0; color: #222; background: #f6f6f4; }
  header { display: flex; gap: 1rem; align-items: center; padding: .6rem 1rem; background: #23303d; color: #fff; }
  header h1 { font-size: 1.1rem; margin: 0; }
  header .status { color: #bcd; }
  button { font: inherit; padding: .15rem .5rem; cursor: pointer; }
  button:disabled { cursor: default; opacity: .5; }
  main { display: grid; grid-template-columns: minmax(420px, 1fr) minmax(420px, 1.2fr); gap: 1rem; padding: 1rem; }
  section { background: #fff; border: 1px solid #ddd; border-radius: 4px; padding: .6rem .8rem; }
  h2 { font-size: .95rem; margin: 0 0 .4rem; }
  .nodes { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: .6rem; }
  .node { border: 1px solid #ccc; border-radius: 4px; padding: .4rem .5rem; }
  .node[data-state=up] { border-left: 5px solid #2a8a3e; } .node[data-state=down] { border-left: 5px solid #b22; background: #fff4f4; }
  .node[data-state=recovering], .node[data-state=starting] { border-left: 5px solid #d90; } .node[data-state=paused] { border-left: 5px solid #66a; background: #f4f4ff; }
  .node .meta { color: #666; font-size: 11px; word-break: break-all; }
  .node .actions { margin: .3rem 0; display: flex; flex-wrap: wrap; gap: .2rem; }
  /* A select is as wide as its chosen option (coordinator.after-decision-logged is wider than a card):
     grid items and the select may shrink, and the select takes at most its card's width. */
  .node { min-width: 0; }
  .node .actions select { min-width: 0; max-width: 100%; flex: 1 1 7rem; text-overflow: ellipsis; }
  .indoubt li { color: #a33; } .timer { font-weight: bold; }
  ul { margin: .2rem 0; padding-left: 1.1rem; } .wal { font: 11px ui-monospace, monospace; color: #444; }
  table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .15rem .4rem; border-bottom: 1px solid #eee; }
  .committed { color: #17702a; } .aborted { color: #a61b1b; } .committing, .aborting, .preparing { color: #a66b00; }
  #queue li { margin: .2rem 0; } #queue .label { font-weight: bold; }
  #diagram { max-height: 520px; overflow-y: auto; border: 1px solid #eee; }
  #log { max-height: 160px; overflow-y: auto; font: 11px ui-monospace, monospace; }
  .bad { color: #a61b1b; }
  .wide { grid-column: 1 / -1; }
</style>
</head>
<body>
<header>
  <h1>twopc lab</h1>
  <span class="status" id="status">connecting…</span>
  <span id="chaos-badge"></span>
  <button id="transfer" data-chaos>run a transfer (10 alice→bob)</button>
  <label><input type="checkbox" id="step-toggle" data-chaos> step mode</label>
  <button id="save">save session log</button>
</header>
<main>
  <section class="wide"><h2>nodes</h2><div class="nodes" id="nodes"></div></section>
  <section><h2>transactions</h2>
    <table><thead><tr><th>transaction</th><th>state</th><th>branches (vote, ack)</th></tr></thead><tbody id="txs"></tbody></table>
    <h2 style="margin-top:.8rem">step queue <span id="step-state"></span></h2>
    <ul id="queue"></ul>
    <h2 style="margin-top:.8rem">actions</h2><div id="log"></div>
  </section>
  <section><h2>sequence diagram (live)</h2><div id="diagram"><svg id="svg" width="100%" height="40"></svg></div></section>
</main>
<script>
'use strict';
const token = new URLSearchParams(location.hash.slice(1)).get('token');
const auth = token ? { authorization: 'Bearer ' + token } : {};
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const $ = (id) => document.getElementById(id);
/** Bounds of what the page keeps: rows of the diagram, lines of the action log, WAL records per node. */
const DIAGRAM_ROWS_MAX = 300, LOG_LINES_MAX = 200, WAL_SHOWN_MAX = 8;
const state = { chaos: false, lanes: [], nodes: new Map(), txs: new Map(), inDoubt: new Map(), wal: new Map(), rows: [], step: { on: false, queue: [] }, points: new Map(), picked: new Map() };

async function act(path, body) {
  const res = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify(body ?? {}) });
  const out = await res.json().catch(() => ({}));
  if (!res.ok) logLine('refused: ' + (out.error ? out.error.message : res.status), true);
  return out;
}
function logLine(text, bad) {
  const div = document.createElement('div');
  div.textContent = new Date().toLocaleTimeString() + ' ' + text;
  if (bad) div.className = 'bad';
  const log = $('log');
  log.append(div);
  while (log.childElementCount > LOG_LINES_MAX) log.firstElementChild.remove();
  log.scrollTop = log.scrollHeight;
}

function renderNodes() {
  $('nodes').innerHTML = [...state.nodes.values()].map((n) => {
    const doubts = state.inDoubt.get(n.name) ?? [];
    const wal = state.wal.get(n.name) ?? [];
    const actions = state.chaos ? '<div class="actions">' +
      '<button data-node="' + esc(n.name) + '" data-action="kill">SIGKILL</button>' +
      (n.state === 'paused' ? '<button data-node="' + esc(n.name) + '" data-action="cont">SIGCONT</button>' : '<button data-node="' + esc(n.name) + '" data-action="stop">SIGSTOP</button>') +
      '<button data-node="' + esc(n.name) + '" data-action="restart">restart</button>' +
      '<select data-points="' + esc(n.name) + '"><option value="">crash point…</option>' +
        (state.points.get(n.name) ?? []).map((p) => '<option value="' + esc(p.name) + '" title="' + esc(p.when) + '"' + (state.picked.get(n.name) === p.name ? ' selected' : '') + '>' + esc(p.name) + '</option>').join('') + '</select>' +
      '<button data-node="' + esc(n.name) + '" data-action="crash-at">arm</button></div>' : '';
    return '<div class="node" id="node-' + esc(n.name) + '" data-state="' + esc(n.state) + '">' +
      '<b>' + esc(n.name) + '</b> <span class="state">' + esc(n.state) + '</span>' +
      '<div class="meta">' + esc(n.role) + (n.pid ? ' · pid ' + n.pid : '') + '<br>WAL ' + esc(n.walDir) + '</div>' + actions +
      (n.role === 'participant' ? '<div>in doubt: <span class="indoubt-count">' + doubts.length + '</span></div><ul class="indoubt">' +
        doubts.map((d) => '<li data-tx="' + esc(d.txId) + '">' + esc(d.txId) + ' blocked <span class="timer" data-since="' + d.since + '"></span>, holds ' + d.keys.map(esc).join(', ') + '</li>').join('') + '</ul>' : '') +
      '<ul class="wal">' + wal.map((w) => '<li>#' + w.lsn + ' ' + esc(w.record) + (w.forced ? ' (forced)' : '') + ' ' + esc(w.txId ?? '') + '</li>').join('') + '</ul></div>';
  }).join('');
  tick();
}
function renderTxs() {
  $('txs').innerHTML = [...state.txs.values()].reverse().map((t) =>
    '<tr data-tx="' + esc(t.txId) + '" data-state="' + esc(t.state) + '"><td>' + esc(t.txId) + '</td><td class="' + esc(t.state) + '">' + esc(t.state) +
    (t.reason ? ' <small>(' + esc(t.reason) + ')</small>' : '') + '</td><td>' +
    t.branches.map((b) => esc(b.participant) + ' (' + esc(b.vote ?? '…') + (b.acked ? ', acked' : '') + ')').join(', ') + '</td></tr>').join('');
}
function renderQueue() {
  $('step-toggle').checked = state.step.on;
  $('step-state').textContent = state.step.on ? '(on: ' + state.step.queue.length + ' waiting)' : '(off)';
  $('queue').innerHTML = state.step.queue.map((m) =>
    '<li data-id="' + m.id + '" data-stage="' + esc(m.stage) + '" data-from="' + esc(m.from) + '" data-to="' + esc(m.to) + '" data-label="' + esc(m.label) + '">' +
    esc(m.from) + ' → ' + esc(m.to) + ': <span class="label">' + esc(m.label) + '</span> ' + esc(m.txIds.join(' ')) + ' ' +
    ['deliver', 'duplicate', 'delay', 'drop'].map((a) => '<button data-step="' + m.id + '" data-verdict="' + a + '">' + a + '</button>').join('') + '</li>').join('');
}
function tick() {
  const now = Date.now();
  for (const el of document.querySelectorAll('.timer')) el.textContent = ((now - Number(el.dataset.since)) / 1000).toFixed(1) + ' s';
}

const COLORS = { prepare: '#1b4fa6', vote: '#17702a', commit: '#17702a', abort: '#a61b1b', ack: '#555', outcome: '#a66b00', inquiry: '#a66b00', transfer: '#222' };
function colorOf(label) { for (const k of Object.keys(COLORS)) if (label.startsWith(k)) return COLORS[k]; return '#444'; }
/** Rows stay in time order: a WAL write is read from the node's log a little after it happened. */
function addRow(row) {
  let i = state.rows.length;
  while (i > 0 && state.rows[i - 1].at > row.at) i--;
  state.rows.splice(i, 0, row);
  if (state.rows.length > DIAGRAM_ROWS_MAX) state.rows.splice(0, state.rows.length - DIAGRAM_ROWS_MAX);
  drawDiagram();
}
function drawDiagram() {
  const lanes = state.lanes, W = 130, H = 22, top = 30, svg = $('svg');
  const x = (lane) => { const i = lanes.indexOf(lane); return 60 + (i < 0 ? lanes.length : i) * W; };
  const height = top + state.rows.length * H + 20;
  svg.setAttribute('height', height);
  svg.setAttribute('width', 120 + lanes.length * W);
  let out = lanes.map((l) => '<text x="' + x(l) + '" y="16" text-anchor="middle" font-weight="bold">' + esc(l) + '</text><line x1="' + x(l) + '" y1="22" x2="' + x(l) + '" y2="' + height + '" stroke="#ccc"/>').join('');
  state.rows.forEach((r, i) => {
    const y = top + i * H + 10;
    if (r.kind === 'mark') {
      out += '<circle cx="' + x(r.lane) + '" cy="' + y + '" r="4" fill="' + (r.bad ? '#b22' : r.mark === 'wal' ? '#888' : '#d90') + '"/><text x="' + (x(r.lane) + 8) + '" y="' + (y + 4) + '" font-size="11" fill="' + (r.bad ? '#b22' : '#555') + '">' + esc(r.label) + '</text>';
      return;
    }
    // A peer's inquiry does not say who sent it: drawn on the lane of the one end that is known.
    const known = lanes.includes(r.from) ? r.from : r.to;
    if (!lanes.includes(r.from) || !lanes.includes(r.to)) {
      const text = (lanes.includes(r.from) ? r.label + ' → a peer' : r.label + ' from a peer') + (r.fate !== 'passed' ? ' [' + r.fate + ']' : '') + (r.txIds && r.txIds.length ? ' ' + r.txIds.join(' ') : '');
      out += '<text x="' + (x(known) + 8) + '" y="' + (y + 4) + '" font-size="11" fill="' + colorOf(r.label) + '">' + (lanes.includes(r.from) ? '⇢ ' : '⇠ ') + esc(text) + '</text>';
      return;
    }
    const x1 = x(r.from), x2 = x(r.to), c = colorOf(r.label);
    const dash = r.fate === 'held' ? ' stroke-dasharray="4 3"' : '';
    const end = r.fate === 'dropped' ? (x1 + x2) / 2 : x2;
    out += '<line class="msg" data-fate="' + esc(r.fate) + '" x1="' + x1 + '" y1="' + y + '" x2="' + end + '" y2="' + y + '" stroke="' + c + '" stroke-width="1.5"' + dash + '/>';
    if (r.fate === 'dropped') out += '<text x="' + end + '" y="' + (y + 4) + '" fill="#b22" font-weight="bold">✕</text>';
    else out += '<polygon points="' + end + ',' + y + ' ' + (end - Math.sign(x2 - x1) * 7) + ',' + (y - 4) + ' ' + (end - Math.sign(x2 - x1) * 7) + ',' + (y + 4) + '" fill="' + c + '"/>';
    out += '<text x="' + ((x1 + x2) / 2) + '" y="' + (y - 3) + '" text-anchor="middle" font-size="11" fill="' + c + '">' + esc(r.label + (r.fate !== 'passed' ? ' [' + r.fate + ']' : '') + (r.txIds && r.txIds.length ? ' ' + r.txIds.join(' ') : '')) + '</text>';
  });
  svg.innerHTML = out;
  const box = $('diagram');
  box.scrollTop = box.scrollHeight;
}

function apply(e) {
  switch (e.type) {
    case 'node': {
      const before = state.nodes.get(e.node.name);
      state.nodes.set(e.node.name, e.node);
      if (before && before.state !== e.node.state) addRow({ kind: 'mark', at: e.atMs, lane: e.node.name, label: e.node.state + (e.node.pid ? ' (pid ' + e.node.pid + ')' : ''), mark: 'node', bad: e.node.state === 'down' });
      if (e.node.state !== 'up') state.inDoubt.delete(e.node.name);
      return renderNodes();
    }
    case 'tx': state.txs.set(e.tx.txId, e.tx); return renderTxs();
    case 'indoubt': state.inDoubt.set(e.node, e.transactions); return renderNodes();
    case 'wal': {
      const list = state.wal.get(e.node) ?? [];
      list.unshift(e);
      list.length = Math.min(list.length, WAL_SHOWN_MAX);
      state.wal.set(e.node, list);
      addRow({ kind: 'mark', at: e.timeMs ?? e.atMs, lane: e.node, label: e.record + (e.forced ? ' (forced)' : '') + ' #' + e.lsn, mark: 'wal' });
      return renderNodes();
    }
    case 'message': return addRow({ kind: 'message', at: e.atMs, ...e });
    case 'step': state.step = { on: e.on, queue: e.queue }; return renderQueue();
    case 'action':
      logLine((e.node ? e.node + ': ' : '') + e.action + ' — ' + e.detail, !e.ok);
      if (e.node) addRow({ kind: 'mark', at: e.atMs, lane: e.node, label: e.action + ': ' + e.detail, mark: 'action', bad: !e.ok });
      return;
  }
}
function applySnapshot(s) {
  state.chaos = s.chaos; state.lanes = s.lanes;
  state.nodes = new Map(s.nodes.map((n) => [n.name, n]));
  state.txs = new Map(s.txs.map((t) => [t.txId, t]));
  state.inDoubt = new Map(Object.entries(s.inDoubt));
  state.step = s.step;
  $('chaos-badge').textContent = s.chaos ? 'chaos: actions on' : 'read-only (start with --chaos for actions)';
  for (const el of document.querySelectorAll('[data-chaos]')) el.disabled = !s.chaos;
  renderNodes(); renderTxs(); renderQueue(); drawDiagram();
}

/** The event stream, read with fetch so the token can travel in a header; reconnects after a pause. */
async function listen() {
  for (;;) {
    try {
      const res = await fetch('/lab/events', { headers: auth });
      if (!res.ok) {
        const body = await res.json().catch(() => ({}));
        $('status').textContent = 'refused: ' + (body.error ? body.error.message : res.status);
        return;
      }
      $('status').textContent = 'live';
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let cut;
        while ((cut = buf.indexOf('\\n\\n')) >= 0) {
          const frame = buf.slice(0, cut); buf = buf.slice(cut + 2);
          const kind = (/^event: (.*)$/m.exec(frame) || [])[1];
          const data = frame.split('\\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\\n');
          if (!data) continue;
          if (kind === 'snapshot') { state.rows = []; applySnapshot(JSON.parse(data)); } else apply(JSON.parse(data));
        }
      }
    } catch (e) { /* the cluster went away: try again below */ }
    $('status').textContent = 'disconnected: reconnecting…';
    await new Promise((r) => setTimeout(r, 2000));
  }
}

document.addEventListener('click', async (ev) => {
  const t = ev.target;
  if (!(t instanceof HTMLElement)) return;
  if (t.id === 'transfer') return void act('/lab/api/transfer');
  if (t.id === 'save') {
    const res = await fetch('/lab/session', { headers: auth });
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([await res.text()], { type: 'application/json' }));
    a.download = 'twopc-lab-session.json';
    a.click();
    return;
  }
  if (t.dataset.step) return void act('/lab/api/step/' + t.dataset.step, { action: t.dataset.verdict, delayMs: 2000 });
  const node = t.dataset.node, action = t.dataset.action;
  if (!node || !action) return;
  if (action === 'crash-at') {
    const point = state.picked.get(node);
    if (!point) return logLine('pick a crash point first', true);
    return void act('/lab/api/nodes/' + node + '/crash-at', { point });
  }
  return void act('/lab/api/nodes/' + node + '/' + action);
});
/** A node's crash points are fetched when its list is opened: once per click, never on a timer. */
document.addEventListener('focusin', async (ev) => {
  const sel = ev.target;
  if (!(sel instanceof HTMLSelectElement) || !sel.dataset.points || state.points.has(sel.dataset.points)) return;
  await loadPoints(sel.dataset.points);
});
async function loadPoints(node) {
  const res = await fetch('/lab/api/nodes/' + node + '/points', { headers: auth });
  const body = await res.json().catch(() => ({}));
  state.points.set(node, body.points ?? []);
  renderNodes();
}
document.addEventListener('change', (ev) => {
  const sel = ev.target;
  if (sel instanceof HTMLSelectElement && sel.dataset.points) state.picked.set(sel.dataset.points, sel.value);
});
$('step-toggle').addEventListener('change', (ev) => void act('/lab/api/step', { on: ev.target.checked }));
setInterval(tick, 250);
listen();
</script>
</body>
</html>
`;
