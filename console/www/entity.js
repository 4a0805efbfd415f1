// SPDX-License-Identifier: MIT
// vigil-console's entity pages (#/entity/KIND/ID?from=&to=): a card,
// merchant, terminal, device or ip over a window of the archive, from GET
// /api/entity/KIND/ID: its transactions per day (a chart), the newest of
// them, its profile in the current generation, and the cards linked to it
// through shared devices or ips, drawn as a graph (SVG, id entity-linked).
// Also the links every page uses for these ids (entityLink) and the CSV
// export of any table (csvButton). Loaded before app.js; uses its h(), api()
// and helpers at call time. Every value goes through textContent.
'use strict';

const entityKinds = ['card', 'merchant', 'terminal', 'device', 'ip'];

// a link to an entity's page; '–' for an empty id
function entityLink(kind, id) {
  if (!id) return '–';
  return h('a', { href: '#/entity/' + kind + '/' + encodeURIComponent(id), class: 'entity-link entity-' + kind }, id);
}

// ---------------------------------------------------------------- CSV

function csvCell(s) {
  s = String(s === null || s === undefined ? '' : s);
  // a cell a spreadsheet would run as a formula is quoted with a leading '
  if (/^[=+\-@\t\r]/.test(s) && !/^-?\d+(\.\d+)?$/.test(s)) s = "'" + s;
  return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}

// The text of a table as CSV (RFC 4180, CRLF): header row, then body rows;
// cells as shown, buttons left out.
function tableCsv(table) {
  const rows = [];
  for (const tr of table.querySelectorAll('tr')) {
    const cells = [...tr.children].filter(td => !td.querySelector('button, select, input'));
    rows.push(cells.map(td => csvCell(td.textContent.trim())).join(','));
  }
  return rows.join('\r\n') + '\r\n';
}

// A "CSV" button that downloads the table with this id as NAME.csv.
function csvButton(tableId, name) {
  return h('button', { type: 'button', class: 'btn-csv', 'data-table': tableId, onclick: () => {
    const t = document.getElementById(tableId);
    if (!t) return;
    const url = URL.createObjectURL(new Blob([tableCsv(t)], { type: 'text/csv;charset=utf-8' }));
    const a = h('a', { href: url, download: name + '.csv' });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  } }, 'CSV');
}

// ---------------------------------------------------------------- graph

const svgNS = 'http://www.w3.org/2000/svg';

function svgEl(tag, attrs, ...kids) {
  const e = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) e.setAttribute(k, v);
  for (const k of kids) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

// The entity in the middle, the devices and ips of its transactions on an
// inner ring (a device's or ip's own node is the middle), the cards that
// used them on an outer ring; an edge where a card used a device or ip.
// Every node links to its page; a card with fraud labelled is red.
function linkedGraph(d) {
  const L = d.linked, W = 480, H = 330, cx = W / 2, cy = H / 2;
  const others = L.cards.filter(c => !c.self);
  const svg = svgEl('svg', { id: 'entity-linked', viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img',
    'aria-label': `${others.length} cards linked through ${L.shared.length} devices and ips` });
  const ring = (n, r, i) => {
    const a = 2 * Math.PI * i / Math.max(n, 1) - Math.PI / 2;
    return [cx + r * Math.cos(a), cy + r * Math.sin(a)];
  };
  const isSelf = x => x.kind === d.kind && x.id === d.id;
  const inner = L.shared.filter(x => !isSelf(x));
  const sharedPos = L.shared.map(x => isSelf(x) ? [cx, cy] : ring(inner.length, 72, inner.indexOf(x)));
  const cardPos = others.map((c, i) => ring(others.length, 140, i + 0.5));
  const edges = svgEl('g', { class: 'edges' }), nodes = svgEl('g', { class: 'nodes' });
  L.shared.forEach((x, i) => {
    if (!isSelf(x)) edges.append(svgEl('line', { x1: cx, y1: cy, x2: sharedPos[i][0], y2: sharedPos[i][1], class: 'edge edge-own' }));
  });
  others.forEach((c, j) => c.via.forEach(i => edges.append(svgEl('line', { x1: cardPos[j][0], y1: cardPos[j][1],
    x2: sharedPos[i][0], y2: sharedPos[i][1], class: 'edge' }))));
  const node = (kind, id, x, y, r, cls, title) => nodes.append(
    svgEl('a', { href: '#/entity/' + kind + '/' + encodeURIComponent(id), class: 'graph-node ' + (cls === 'node-centre' ? 'graph-centre' : 'graph-' + kind), 'data-id': id },
      svgEl('title', {}, title), svgEl('circle', { cx: x, cy: y, r, class: cls }),
      svgEl('text', { x, y: y + r + 12, 'text-anchor': 'middle', class: 'node-label' }, id.length > 18 ? id.slice(0, 17) + '…' : id)));
  node(d.kind, d.id, cx, cy, 14, 'node-centre', `${d.kind} ${d.id} (this page)`);
  L.shared.forEach((x, i) => { if (!isSelf(x)) node(x.kind, x.id, sharedPos[i][0], sharedPos[i][1], 9, 'node-' + x.kind, `${x.kind} ${x.id}: ${x.n} of these transactions`); });
  others.forEach((c, j) => node('card', c.card_id, cardPos[j][0], cardPos[j][1], 8,
    'node-card' + (c.fraud > 0 ? ' node-fraud' : ''), `card ${c.card_id}: ${c.n} transactions on these devices and ips, ${c.fraud} labelled fraud`));
  svg.append(edges, nodes);
  return svg;
}

// ---------------------------------------------------------------- page

let entityChart = null;

async function pageEntity(kind, id, qs) {
  const title = h('h1', {}, kind + ' ', h('code', {}, id));
  const from = h('input', { id: 'e-from', value: qs.get('from') || '', size: 12, placeholder: 'YYYY-MM-DD' });
  const to = h('input', { id: 'e-to', value: qs.get('to') || '', size: 12, placeholder: 'YYYY-MM-DD' });
  const form = h('form', { class: 'filters', id: 'entity-form' }, h('label', {}, 'from', from), h('label', {}, 'to', to),
    h('button', { type: 'submit', class: 'primary' }, 'Show'),
    h('span', { class: 'muted' }, 'a window of at most 31 days; the last 7 indexed by default'));
  form.addEventListener('submit', ev => {
    ev.preventDefault();
    const p = new URLSearchParams();
    if (from.value.trim()) p.set('from', from.value.trim());
    if (to.value.trim()) p.set('to', to.value.trim());
    location.hash = '#/entity/' + kind + '/' + encodeURIComponent(id) + (p.toString() ? '?' + p.toString() : '');
  });
  main.replaceChildren(title, form, h('p', { class: 'muted' }, 'reading the archive…'));
  const p = new URLSearchParams();
  for (const k of ['from', 'to']) if (qs.get(k)) p.set(k, qs.get(k));
  const r = await api('GET', '/api/entity/' + encodeURIComponent(kind) + '/' + encodeURIComponent(id) + (p.toString() ? '?' + p.toString() : ''));
  if (!r.ok) { main.replaceChildren(title, form, h('p', { class: 'error', id: 'entity-error' }, r.data.error)); return; }
  const d = r.data;
  const alerts = d.days.reduce((a, x) => a + x.alerts, 0), fraud = d.days.reduce((a, x) => a + x.fraud, 0);
  const searchKey = kind === 'ip' ? 'ip' : kind;
  const txns = table(['time', 'transaction', 'card', 'merchant', 'terminal', 'device', 'ip', { t: 'amount', num: 1 }, { t: 'score', num: 1 }, 'decision', 'label'],
    d.transactions.map(t => h('tr', {},
      h('td', { class: 'time' }, fmtTime(t.time)),
      h('td', {}, txnLink(t)),
      h('td', {}, entityLink('card', t.card_id)), h('td', {}, entityLink('merchant', t.merchant_id)),
      h('td', {}, entityLink('terminal', t.terminal_id)), h('td', {}, entityLink('device', t.device_id)),
      h('td', {}, entityLink('ip', t.ip)),
      h('td', { class: 'num' }, t.amount + ' ' + t.currency), h('td', { class: 'num' }, t.score),
      h('td', {}, badge(t.decision)), h('td', {}, t.label ? badge(t.label) : ''))), { id: 'entity-txns' });
  const others = d.linked.cards.filter(c => !c.self);
  const linkedTable = table(['card', { t: 'transactions', num: 1 }, { t: 'fraud', num: 1 }, 'through'],
    others.map(c => h('tr', {}, h('td', {}, entityLink('card', c.card_id)), h('td', { class: 'num' }, c.n),
      h('td', { class: 'num' }, c.fraud ? badge(String(c.fraud), 'fraud') : '0'),
      h('td', {}, c.via.map(i => d.linked.shared[i]).flatMap((x, k) => [k ? ', ' : '', x.kind + ' ', entityLink(x.kind, x.id)])))), { id: 'entity-linked-table' });
  const prof = d.profile || {};
  main.replaceChildren(title, form,
    h('p', { id: 'entity-summary' }, `${d.matched} transaction${d.matched === 1 ? '' : 's'} from ${fmtTime(d.from)} to ${fmtTime(d.to)} · ${alerts} alert${alerts === 1 ? '' : 's'} · ${fraud} labelled fraud · `,
      h('a', { href: '#/search?' + new URLSearchParams({ [searchKey]: id, from: d.from, to: d.to }).toString() }, 'search them'),
      h('span', { class: 'muted' }, ` (${d.scanned} read in ${num(d.ms, 0)} ms${d.truncated ? ', stopped at the read limit: narrow the window' : ''})`)),
    ...unreadableNote(d),
    h('div', { class: 'split' },
      h('div', { class: 'card' }, h('h2', {}, 'Transactions per day'), h('div', { class: 'chart-box' }, h('canvas', { id: 'entity-chart' }))),
      h('div', { class: 'card' }, h('h2', {}, 'Profile (generation ' + (prof.generation === null || prof.generation === undefined ? '–' : prof.generation) + ')'),
        prof.note ? h('p', { class: 'muted' }, prof.note) : '', kvTable(prof.values))),
    h('div', { class: 'card' },
      h('h2', {}, `Linked cards: ${others.length} through ${d.linked.shared.length} devices and ips`,
        d.linked.truncated ? h('span', { class: 'muted' }, ' (capped)') : ''),
      h('div', { class: 'split' },
        others.length || d.linked.shared.length ? linkedGraph(d) : h('p', { class: 'muted', id: 'entity-linked' }, 'no device or ip in these transactions'),
        h('div', {}, linkedTable))),
    h('h2', {}, `Transactions (newest ${d.transactions.length} of ${d.matched}) `, csvButton('entity-txns', `${kind}-${id}-transactions`)),
    txns);
  setTimeout(() => {
    if (typeof Chart === 'undefined') return;
    if (entityChart) entityChart.destroy();
    entityChart = new Chart(document.getElementById('entity-chart'), {
      data: { labels: d.days.map(x => x.day), datasets: [
        { type: 'bar', label: 'allowed', data: d.days.map(x => x.n - x.alerts), backgroundColor: '#9aa5b1', stack: 'n' },
        { type: 'bar', label: 'alerts', data: d.days.map(x => x.alerts), backgroundColor: '#a86400', stack: 'n' },
        { type: 'line', label: 'labelled fraud', data: d.days.map(x => x.fraud), borderColor: '#b3261e', backgroundColor: '#b3261e', tension: 0 }] },
      options: { maintainAspectRatio: false, animation: false, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } } });
  }, 0);
}

// a transaction id: its case if vigild alerted on it, else its search row
function txnLink(t) {
  if (t.decision === 'review' || t.decision === 'decline') return h('a', { href: '#/case/' + encodeURIComponent(t.txn_id), class: 'txn-link' }, t.txn_id);
  return h('a', { href: '#/search?' + new URLSearchParams({ card: t.card_id, from: t.time, to: new Date(Date.parse(t.time) + 1).toISOString() }).toString(), class: 'txn-link' }, t.txn_id);
}
