/**
 * The dashboard at GET /: one static page that polls the coordinator's own API
 * (GET /v1/transactions, /v1/participants/in-doubt, /healthz) once a second. No
 * build step, no assets. It is the read-only view where no `twopc cluster`
 * serves the lab: every participant's in-doubt list, with how long each branch
 * has blocked, comes through the coordinator (one survey per refresh, which the
 * coordinator bounds and shares among pages), so the browser needs to reach
 * only the coordinator, with one token.
 * With --token, open it as /#token=T: the page is served without the token (it
 * holds no data), reads T from the URL fragment, which browsers never send to
 * the server, and sends it as a bearer token on every API call.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>twopc coordinator</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #222; }
  h1 { font-size: 1.3rem; margin: 0 0 .3rem; }
  #health { color: #666; margin-bottom: 1rem; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #eee; vertical-align: top; }
  th { background: #fafafa; }
  .committed { color: #17702a; } .aborted { color: #a61b1b; }
  .committing, .aborting, .preparing { color: #a66b00; } .active { color: #1b4fa6; }
  .heuristic-mixed { color: #fff; background: #a61b1b; padding: 0 .3rem; }
  code { font-size: 12px; }
  select { margin-left: .5rem; }
  h2 { font-size: 1.1rem; margin: 1.5rem 0 .3rem; }
  .unreachable { color: #a61b1b; } .blocked { color: #a66b00; font-variant-numeric: tabular-nums; }
</style>
</head>
<body>
<h1>twopc coordinator</h1>
<!--lab-->
<div id="health">connecting…</div>
<h2>participants' in-doubt lists</h2>
<table>
  <thead><tr><th>participant</th><th>in doubt</th><th>blocked for</th><th>keys held</th><th>coordinator</th></tr></thead>
  <tbody id="indoubt"></tbody>
</table>
<h2>transactions</h2>
<label>state
  <select id="state">
    <option value="">all</option>
    <option>active</option><option>preparing</option><option>committing</option>
    <option>aborting</option><option>committed</option><option>aborted</option>
  </select>
</label>
<table>
  <thead><tr><th>transaction</th><th>state</th><th>outcome</th><th>branches (vote, acked)</th><th>reason</th></tr></thead>
  <tbody id="rows"></tbody>
</table>
<script>
  const token = new URLSearchParams(location.hash.slice(1)).get('token');
  const headers = token ? { authorization: 'Bearer ' + token } : {};
  const esc = (s) => String(s ?? '').replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
  const blockedFor = (ms) => ms < 1000 ? ms + ' ms' : ms < 120000 ? (ms / 1000).toFixed(1) + ' s' : Math.floor(ms / 60000) + ' min ' + Math.floor(ms % 60000 / 1000) + ' s';
  function inDoubtRows(survey) {
    return survey.participants.map((p) => {
      const who = '<td>' + esc(p.name) + ' <code>' + esc(p.url) + '</code></td>';
      if (!p.reachable) return '<tr>' + who + '<td class="unreachable" colspan="4">unreachable: ' + esc(p.error) + '</td></tr>';
      if (!p.transactions) return '<tr>' + who + '<td class="unreachable" colspan="4">' + esc(p.error) + '</td></tr>';
      if (p.transactions.length === 0) return '<tr>' + who + '<td colspan="4">none</td></tr>';
      return p.transactions.map((t) => '<tr>' + who + '<td><code>' + esc(t.txId) + '</code></td>' +
        '<td class="blocked">' + esc(blockedFor(t.blockedMs)) + '</td>' +
        '<td>' + t.keys.map((k) => '<code>' + esc(k) + '</code>').join(', ') + '</td>' +
        '<td><code>' + esc(t.coordinator) + '</code></td></tr>').join('');
    }).join('');
  }
  async function refresh() {
    try {
      const h = await (await fetch('/healthz')).json();
      document.getElementById('health').textContent =
        h.name + ' (pid ' + h.pid + ')' + (h.recovering ? ' — recovering from its WAL' : ' — up');
      const state = document.getElementById('state').value;
      const res = await fetch('/v1/transactions' + (state ? '?state=' + state : ''), { headers });
      if (res.status === 401) {
        document.getElementById('health').textContent =
          (token ? 'the token in this URL was refused' : 'this coordinator needs its token') + ': open this page as /#token=<token>';
        return;
      }
      const body = await res.json();
      if (!res.ok) throw new Error(body.error ? body.error.message : res.status);
      document.getElementById('rows').innerHTML = body.transactions.map((t) =>
        '<tr><td><code>' + esc(t.txId) + '</code></td>' +
        '<td class="' + esc(t.state) + '">' + esc(t.state) + (t.inDoubt ? ' (in doubt)' : '') + '</td>' +
        '<td class="' + esc(t.outcome) + '">' + esc(t.outcome) + '</td>' +
        '<td>' + t.branches.map((b) => esc(b.participant) + ' (' + esc(b.vote ?? '…') + (b.acked ? ', acked' : '') + ')').join(', ') + '</td>' +
        '<td>' + esc(t.reason) + '</td></tr>').join('');
      const surveyRes = await fetch('/v1/participants/in-doubt', { headers });
      const survey = await surveyRes.json();
      if (!surveyRes.ok) throw new Error(survey.error ? survey.error.message : surveyRes.status);
      document.getElementById('indoubt').innerHTML = inDoubtRows(survey);
    } catch (e) {
      document.getElementById('health').textContent = 'unreachable: ' + e.message;
    }
  }
  refresh();
  setInterval(refresh, 1000);
</script>
</body>
</html>
`;

/**
 * The page, with a link to the live lab when the coordinator runs inside `twopc cluster`
 * (which passes --lab-url). The URL is the operator's own flag, escaped all the same.
 */
export function dashboardHtml(labUrl?: string): string {
  if (labUrl === undefined) return DASHBOARD_HTML;
  const href = labUrl.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return DASHBOARD_HTML.replace('<!--lab-->', `<p id="lab">The live lab of this cluster: <a href="${href}">${href}</a> (nodes, in-doubt timers, messages, chaos buttons).</p>`);
}
