// SPDX-License-Identifier: MIT
// vigil-console's web UI: a hash router over four pages (queue, case,
// rules, nights, audit) drawing what /api/ returns. Every value from the
// server goes through textContent (h() below), never innerHTML. The token
// is asked once and kept in sessionStorage (this tab only).
'use strict';

const main = document.getElementById('main');
const statusEl = document.getElementById('status-msg');
let me = null;

function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat()) {
    if (k === null || k === undefined || k === false) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

function say(msg, isError) {
  statusEl.textContent = msg || '';
  statusEl.className = isError ? 'error' : '';
}

function token() { return sessionStorage.getItem('vigil-token'); }

// an analyst identified by a client certificate (HTTPS) needs no token
let byCert = false;

async function api(method, path, body) {
  const opts = { method, headers: token() ? { Authorization: 'Bearer ' + token() } : {} };
  // every POST says JSON, with a body or without: the console refuses any
  // other (a page of another site cannot send this type without asking)
  if (method === 'POST') opts.headers['Content-Type'] = 'application/json';
  if (body !== undefined) opts.body = JSON.stringify(body);
  const r = await fetch(path, opts);
  let data = null;
  try { data = await r.json(); } catch (e) { data = { error: r.statusText }; }
  // the error object of docs/tools.md: the pages show its message
  if (data && data.error && typeof data.error === 'object') {
    data.error_object = data.error;
    data.error = data.error.message;
  }
  if (r.status === 401) { askToken('Your token was not accepted.'); }
  return { status: r.status, ok: r.ok, data };
}

function askToken(msg) {
  const d = document.getElementById('login');
  document.getElementById('login-error').textContent = msg || '';
  if (!d.open) d.showModal();
}

document.getElementById('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const t = document.getElementById('token-input').value.trim();
  sessionStorage.setItem('vigil-token', t);
  const r = await api('GET', '/api/me');
  if (!r.ok) {
    sessionStorage.removeItem('vigil-token');
    document.getElementById('login-error').textContent = 'Token not accepted.';
    return;
  }
  document.getElementById('login').close();
  me = r.data;
  document.getElementById('whoami').textContent = me.name + ' (' + me.role + ')';
  route();
});

document.getElementById('logout').addEventListener('click', () => {
  sessionStorage.removeItem('vigil-token');
  me = null;
  document.getElementById('token-input').value = ''; // the old token leaves the page too
  document.getElementById('whoami').textContent = '';
  main.replaceChildren();
  askToken('');
});

function fmtTime(s) { return s ? s.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : ''; }
function pct(x) { return x === null || x === undefined ? '–' : (100 * x).toFixed(2) + '%'; }
function num(x, d) { return x === null || x === undefined ? '–' : (typeof x === 'number' ? x.toFixed(d === undefined ? 2 : d) : String(x)); }
function badge(text, cls) { return h('span', { class: 'badge ' + (cls || text) }, text); }
function labelBadge(l) { return l ? badge(l, l) : h('span', { class: 'muted' }, 'unlabelled'); }

function table(headers, rows, opts) {
  return h('table', opts || {},
    h('thead', {}, h('tr', {}, headers.map(x => h('th', { class: x.num ? 'num' : null }, x.t || x)))),
    h('tbody', {}, rows));
}

function kvTable(obj) {
  if (!obj) return h('p', { class: 'muted' }, 'none');
  // a list (a profile's hour histogram, countries, merchant hashes) as
  // "a, b, c", which wraps in its cell instead of widening the page
  const val = v => v === null ? '–' : typeof v === 'number' ? (Number.isInteger(v) ? String(v) : num(v, 4))
    : Array.isArray(v) ? (v.length ? v.map(val).join(', ') : 'none') : String(v);
  return table(['feature', 'value'], Object.entries(obj).map(([k, v]) =>
    h('tr', {}, h('td', {}, h('code', {}, k)),
      h('td', { class: Array.isArray(v) ? 'num list' : 'num' }, val(v)))));
}

// ---------------------------------------------------------------- queue

const queueDefaults = { decision: 'review', status: 'open', sort: 'score', rule: '', card: '',
  merchant: '', min_amount: '', from: '', to: '', offset: 0, after: '', limit: 50 };
const queueState = Object.assign({}, queueDefaults);

// the queue's filters live in the address (#/queue?status=all&rule=...):
// a reload or a shared link shows the same rows
function queueGo() {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(queueState)) if (v !== '' && String(v) !== String(queueDefaults[k])) p.set(k, v);
  const hash = '#/queue' + (p.toString() ? '?' + p.toString() : '');
  if (location.hash === hash) pageQueue(); else location.hash = hash;
}

async function pageQueue() {
  const qs = new URLSearchParams((location.hash.split('?')[1]) || '');
  for (const k of Object.keys(queueDefaults)) queueState[k] = qs.has(k) ? qs.get(k) : queueDefaults[k];
  queueState.offset = Number(queueState.offset) || 0;
  queueState.limit = Number(queueState.limit) || queueDefaults.limit;
  const f = (name, input) => h('label', {}, name, input);
  const sel = (key, opts) => {
    const s = h('select', { id: 'q-' + key }, opts.map(o => h('option', { value: o, selected: queueState[key] === o }, o)));
    s.addEventListener('change', () => { queueState[key] = s.value; queueState.offset = 0; queueState.after = ''; queueGo(); });
    return s;
  };
  const inp = (key, ph, type) => {
    const i = h('input', { id: 'q-' + key, value: queueState[key], placeholder: ph, type: type || 'text', size: 12 });
    i.addEventListener('change', () => { queueState[key] = i.value.trim(); queueState.offset = 0; queueState.after = ''; queueGo(); });
    return i;
  };
  const filters = h('div', { class: 'filters' },
    f('decision', sel('decision', ['review', 'decline', 'all'])),
    f('status', sel('status', ['open', 'labelled', 'all'])),
    f('sort', sel('sort', ['score', 'time'])),
    f('rule', inp('rule', 'rule name')), f('card', inp('card', 'card id')),
    f('merchant', inp('merchant', 'merchant id')), f('min amount', inp('min_amount', '0.00')),
    f('from', inp('from', 'YYYY-MM-DD')), f('to', inp('to', 'YYYY-MM-DD')));
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(queueState)) if (v !== '' && v !== null) params.set(k, v);
  const r = await api('GET', '/api/queue?' + params.toString());
  if (!r.ok) { main.replaceChildren(h('h1', {}, 'Review queue'), filters, h('p', { class: 'error' }, r.data.error)); return; }
  const d = r.data;
  const rows = d.items.map(c => {
    const tr = h('tr', { class: 'clickable case-row', 'data-txn': c.txn_id },
      h('td', { class: 'time' }, fmtTime(c.time)),
      h('td', {}, h('a', { href: '#/case/' + encodeURIComponent(c.txn_id), class: 'case-link' }, c.txn_id)),
      h('td', {}, entityLink('card', c.card_id)), h('td', {}, entityLink('merchant', c.merchant_id)),
      h('td', { class: 'num' }, c.amount + ' ' + c.currency),
      h('td', { class: 'num' }, c.score), h('td', {}, badge(c.decision)),
      h('td', {}, c.hits.map(x => badge(x.rule, x.shadow ? 'shadow' : ''))),
      h('td', {}, c.claim ? 'claimed by ' + c.claim.who : ''),
      h('td', {}, labelBadge(c.label)));
    tr.addEventListener('click', (ev) => { if (ev.target.tagName !== 'A') location.hash = '#/case/' + encodeURIComponent(c.txn_id); });
    return tr;
  });
  const pager = h('div', { class: 'actions' },
    h('button', { type: 'button', disabled: d.offset === 0, onclick: () => { queueState.offset = Math.max(0, d.offset - d.limit); queueState.after = ''; queueGo(); } }, '← newer'),
    h('span', { class: 'muted', id: 'queue-count' }, `${d.total ? d.offset + 1 : 0}–${d.offset + d.items.length} of ${d.total} (${d.ms.toFixed(1)} ms)`),
    csvButton('queue-table', 'queue'),
    // older: the rows after this page's last (`next`), however many came or went above it
    h('button', { type: 'button', disabled: !d.next, onclick: () => { queueState.offset = 0; queueState.after = d.next; queueGo(); } }, 'older →'));
  const hint = d.total === 0 && queueState.status === 'open' ? h('p', { class: 'muted' }, 'No open cases here. ',
    h('a', { href: '#/queue', onclick: (ev) => { ev.preventDefault(); queueState.status = 'all'; queueGo(); } }, 'Show labelled ones too')) : '';
  main.replaceChildren(h('h1', {}, 'Review queue'), filters, hint, pager,
    table(['time', 'transaction', 'card', 'merchant', { t: 'amount', num: 1 }, { t: 'score', num: 1 }, 'decision', 'rules', 'claim', 'label'], rows, { id: 'queue-table' }));
}

// ---------------------------------------------------------------- case

async function pageCase(id) {
  const r = await api('GET', '/api/cases/' + encodeURIComponent(id));
  if (!r.ok) { main.replaceChildren(h('h1', {}, 'Case ' + id), h('p', { class: 'error' }, r.data.error)); return; }
  const c = r.data;
  const result = h('span', { id: 'case-result' });
  const act = async (action, body, okText) => {
    const x = await api('POST', '/api/cases/' + encodeURIComponent(id) + '/' + action, body);
    if (x.ok) { say(okText(x.data)); await pageCase(id); }
    else if (x.status === 409 && x.data.claimed_by) say(`Claimed by ${x.data.claimed_by} until ${fmtTime(x.data.until)}`, true);
    else if (x.status === 409 && x.data.label) {
      // labelled by someone else since this page was drawn: not overridden;
      // the page shows the label now, a second click decides on it
      say(`Labelled ${x.data.label} by ${x.data.label_source.replace(/^analyst:/, '')} at ${fmtTime(x.data.label_time)} meanwhile; not changed`, true);
      await pageCase(id);
    } else say(x.data.error || ('error ' + x.status), true);
  };
  const canAct = me && me.role !== 'read-only';
  const actions = h('div', { class: 'actions' },
    h('button', { type: 'button', id: 'btn-claim', disabled: !canAct, onclick: () => act('claim', {}, d => `Claimed until ${fmtTime(d.until)}`) }, c.claim ? 'Renew claim' : 'Claim'),
    c.claim && me && (c.claim.who === me.name || me.role === 'admin') ? h('button', { type: 'button', id: 'btn-unclaim', onclick: () => act('unclaim', {}, () => 'Claim released') }, 'Release claim') : '',
    h('button', { type: 'button', id: 'btn-fraud', class: 'fraud', disabled: !canAct, onclick: () => act('label', { fraud: true, expected: c.label }, () => 'Marked fraud; the label is sent to vigild') }, 'Fraud'),
    h('button', { type: 'button', id: 'btn-legit', class: 'legit', disabled: !canAct, onclick: () => act('label', { fraud: false, expected: c.label }, () => 'Marked legitimate; the label is sent to vigild') }, 'Legitimate'),
    h('button', { type: 'button', id: 'btn-block', disabled: !canAct, onclick: () => { if (confirm('Block card ' + c.card_id + '?')) act('block', {}, d => d.added ? `Card ${d.card_id} added to ${d.list}` : `Card ${d.card_id} was already blocked`); } }, 'Block card'),
    result);
  const hits = table(['rule', { t: 'points', num: 1 }, 'reason'], c.hits.map(x =>
    h('tr', {}, h('td', {}, x.rule, x.shadow ? badge('shadow', 'shadow') : ''), h('td', { class: 'num' }, x.points === undefined ? '–' : x.points), h('td', {}, x.reason))), { id: 'hits-table' });
  // the model that scored it (its generation's); today's only when that
  // generation is gone, and then said so
  const model = c.model ? h('div', {},
    h('p', { id: 'model-line' }, 'model score ', h('b', {}, num(c.model.score, 4)), h('span', { class: 'muted' }, c.model.scored
      ? ' (generation ' + c.model.generation + ', which scored it)'
      : ' (today\'s model, generation ' + c.model.generation + ', on its inputs: generation ' + c.features_generation + ', which scored it, is no longer kept)')),
    table(['reason', { t: 'push (log-odds)', num: 1 }], c.model.reasons.map(x =>
      h('tr', { class: x.push === 'down' ? 'push-down' : 'push-up' }, h('td', { title: x.feature }, x.text),
        h('td', { class: 'num' }, (x.contrib > 0 ? '+' : '') + num(x.contrib, 2)))), { id: 'reasons-table' }))
    : h('p', { class: 'muted', id: 'model-line' }, c.features_generation === undefined
      ? 'no model explanation: the archived record could not be read'
      : c.features_generation === 0
      ? 'scored before the first generation: rules alone decided'
      : c.features_generation_kept === false && !(c.features && c.features['model.score'] === null)
        ? 'generation ' + c.features_generation + ', which scored it, is no longer kept, and the current one has no model'
        : 'no model in generation ' + c.features_generation + ', which scored it: rules alone decided');
  const hist = table(['time', 'transaction', 'merchant', { t: 'amount', num: 1 }, { t: 'score', num: 1 }, 'decision', 'label'],
    c.card_history.map(t => h('tr', { class: t.txn_id === c.txn_id ? 'clickable' : '' },
      h('td', { class: 'time' }, fmtTime(t.time)),
      // a review or decline opens its case; an allowed one its search row (to label it)
      h('td', {}, t.txn_id === c.txn_id ? t.txn_id : h('a', { href: t.decision === 'allow'
        ? '#/search?' + new URLSearchParams({ card: c.card_id, from: t.time, to: new Date(Date.parse(t.time) + 1).toISOString() }).toString()
        : '#/case/' + encodeURIComponent(t.txn_id) }, t.txn_id)),
      h('td', {}, entityLink('merchant', t.merchant_id)),
      h('td', { class: 'num' }, t.amount + ' ' + t.currency), h('td', { class: 'num' }, t.score),
      h('td', {}, badge(t.decision)), h('td', {}, t.label ? badge(t.label) : ''))), { id: 'history-table' });
  // case work: status, assignee, notes (STATE/casework, audited)
  const status = h('select', { id: 'case-status', disabled: !canAct },
    ...['open', 'investigating', 'closed'].map(s => h('option', Object.assign({ value: s }, c.status === s ? { selected: '' } : {}), s)));
  const assignee = h('input', { id: 'case-assignee', type: 'text', size: 14, placeholder: 'analyst', value: c.assignee || '', disabled: !canAct });
  const noteText = h('textarea', { id: 'note-text', rows: 2, cols: 60, maxlength: 2000, disabled: !canAct });
  const work = h('div', { class: 'card', id: 'case-work' }, h('h2', {}, 'Case work'),
    h('div', { class: 'actions' }, 'status ', status, ' assignee ', assignee,
      h('button', { type: 'button', id: 'btn-status', disabled: !canAct, onclick: () =>
        act('status', { status: status.value, assignee: assignee.value.trim() || null }, d => `Status ${d.status}, assignee ${d.assignee || 'none'}`) }, 'Save')),
    h('ul', { id: 'notes' }, (c.notes || []).map(n => h('li', {}, h('span', { class: 'muted' }, `${fmtTime(n.ts)} ${n.who}: `), n.text))),
    h('div', { class: 'actions' }, noteText,
      h('button', { type: 'button', id: 'btn-note', disabled: !canAct, onclick: () => {
        if (noteText.value.trim()) act('note', { text: noteText.value.trim() }, () => 'Note added');
      } }, 'Add note')));
  const p = c.profiles || {};
  main.replaceChildren(
    h('h1', {}, 'Case ', h('code', {}, c.txn_id), ' ', badge(c.decision), ' ', h('span', { id: 'case-label' }, labelBadge(c.label))),
    h('p', {}, `${fmtTime(c.time)} · ${c.amount} ${c.currency} · card `, h('b', {}, entityLink('card', c.card_id)),
      ' · merchant ', entityLink('merchant', c.merchant_id), ' · terminal ', entityLink('terminal', c.terminal_id),
      ...(c.txn ? [' · device ', entityLink('device', c.txn.device_id), ' · ip ', entityLink('ip', c.txn.ip)] : []),
      ` · ${c.country || '–'} · mcc ${c.mcc} · ${c.channel} · score `, h('b', {}, c.score),
      c.claim ? h('span', { class: 'muted' }, ` · claimed by ${c.claim.who} until ${fmtTime(c.claim.until)}`) : '',
      c.label_source ? h('span', { class: 'muted' }, ` · label from ${c.label_source}`) : ''),
    actions,
    work,
    h('div', { class: 'grid' },
      h('div', { class: 'card' }, h('h2', {}, 'Rules that fired'), hits),
      h('div', { class: 'card' }, h('h2', {}, 'Model'), model),
      h('div', { class: 'card', id: 'case-features' }, h('h2', {}, 'Features as scored'), kvTable(c.features))),
    h('h2', {}, 'The card\'s recent transactions'), hist,
    h('h2', {}, 'Profiles (generation ' + (p.generation === null || p.generation === undefined ? '–' : p.generation) + ')'),
    h('div', { class: 'grid' },
      h('div', { class: 'card' }, h('h2', {}, 'Card'), kvTable(p.card)),
      h('div', { class: 'card' }, h('h2', {}, 'Merchant'), kvTable(p.merchant)),
      h('div', { class: 'card' }, h('h2', {}, 'Terminal'), kvTable(p.terminal))));
}

// ---------------------------------------------------------------- rules

let rulesBase = null; // hash of the file the edit started from
let btChart = null;

function diagView(data) {
  const errs = data.errors || [];
  return h('div', { id: 'check-result' }, errs.map(e =>
    h('pre', { class: 'diag' }, `${e.where}\n    ${e.source}\n    ${' '.repeat(Math.max(0, e.col - 1))}^`)));
}

function selectLine(ta, line) {
  const lines = ta.value.split('\n');
  let start = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) start += lines[i].length + 1;
  ta.focus();
  ta.setSelectionRange(start, start + (lines[line - 1] || '').length);
}

function metricsRow(name, a, b, f) {
  return h('tr', {}, h('td', {}, name), h('td', { class: 'num' }, f(a)), h('td', { class: 'num' }, f(b)));
}

function moneyText(m) {
  if (!m) return '–';
  const parts = Object.entries(m).map(([cur, v]) => `${v.toFixed(2)} ${cur}`);
  return parts.length ? parts.join(' + ') : '0';
}

// vigil-replay --results hits are objects since issue 18 ({rule, points, shadow})
// What a page's read of the archive passed over (a damaged stretch, a record
// that could not be read): the page shows what it could read and says it is
// not all, and where the first gap is (docs/console.md, "When the archive is
// damaged"). An array, to spread among a page's children.
function unreadableNote(d) {
  if (!d.unreadable) return [];
  const n = d.unreadable;
  return [h('p', { class: 'warn unreadable' }, `Incomplete: ${n} part${n > 1 ? 's' : ''} of the archive could not be read and ${n > 1 ? 'were' : 'was'} passed over; the first at ${d.unreadable_first}`)];
}

const hitName = x => (typeof x === 'string' ? x : x.shadow ? `${x.rule} (shadow)` : x.rule);

function backtestView(d) {
  const c = d.current || {}, e = d.edited || {};
  const box = h('div', { class: 'chart-box' }, h('canvas', { id: 'bt-chart' }));
  const trans = Object.entries(d.transitions).filter(([, n]) => n > 0).map(([k, n]) => h('li', {}, `${k}: ${n}`));
  // each changed transaction links to itself: its case, or (exact mode, an
  // allowed one) a search on its card at its time
  const btLink = x => h('a', { href: x.card_id && x.time
    ? '#/search?' + new URLSearchParams({ card: x.card_id, from: x.time, to: new Date(Date.parse(x.time) + 1).toISOString() }).toString()
    : '#/case/' + encodeURIComponent(x.txn_id) }, x.txn_id);
  const cases = table(['transaction', 'before', 'after', 'label'], d.cases.map(x => h('tr', {},
    h('td', {}, btLink(x)), h('td', {}, badge(x.before.decision), ` ${x.before.score} `, (x.before.hits || []).map(hitName).join(', ')),
    h('td', {}, badge(x.after.decision), ` ${x.after.score} `, (x.after.hits || []).map(hitName).join(', ')),
    h('td', {}, x.label ? badge(x.label) : ''))), { id: 'bt-cases' });
  const el = h('div', { id: 'backtest-result' },
    h('h2', {}, `Back-test: ${d.rows} transactions, ${fmtTime(d.from)} – ${fmtTime(d.to)}${d.nightly ? ', nightly rebuilds' : ''} (${d.seconds.toFixed(1)} s)`),
    h('p', { id: 'bt-mode', title: d.mode_reason || '' }, h('b', {}, d.mode === 'exact' ? 'exact' : 'nightly replay'), ': ',
      d.mode === 'exact' ? 'the edited file on the values production archived, against production\'s own decisions'
        : 'both files replayed with the features and thresholds rebuilt as of each day', d.mode_reason ? ` (${d.mode_reason})` : ''),
    ...unreadableNote(d),
    h('div', { class: 'split' },
      h('div', {}, table(['', { t: 'deployed', num: 1 }, { t: 'edited', num: 1 }], [
        metricsRow('alert rate', c.alert_rate, e.alert_rate, pct),
        metricsRow('decline rate', c.decline_rate, e.decline_rate, pct),
        metricsRow('precision', c.precision, e.precision, pct),
        metricsRow('recall', c.recall, e.recall, pct),
        metricsRow('alerts', c.alerts, e.alerts, x => x === undefined ? '–' : x),
        metricsRow('frauds caught', c.confusion && c.confusion.tp, e.confusion && e.confusion.tp, x => x === undefined ? '–' : x),
        metricsRow('money caught', d.money_caught && d.money_caught.current, d.money_caught && d.money_caught.edited, moneyText)], { id: 'bt-metrics' }),
        h('p', {}, h('b', { id: 'bt-changed' }, `${d.changed} decisions change`)), h('ul', {}, trans)),
      box),
    h('h2', {}, 'Cases that change' + (d.changed > d.cases.length ? ` (first ${d.cases.length})` : '')), h('div', { id: 'bt-changes' }, cases));
  setTimeout(() => {
    if (typeof Chart === 'undefined') return;
    if (btChart) btChart.destroy();
    btChart = new Chart(document.getElementById('bt-chart'), {
      type: 'bar',
      data: { labels: ['alert rate %', 'precision %', 'recall %'], datasets: [
        { label: 'deployed', data: [c.alert_rate, c.precision, c.recall].map(x => 100 * (x || 0)), backgroundColor: '#9aa5b1' },
        { label: 'edited', data: [e.alert_rate, e.precision, e.recall].map(x => 100 * (x || 0)), backgroundColor: '#1f5fa8' }] },
      options: { maintainAspectRatio: false, animation: false } });
  }, 0);
  return el;
}

// pageRules: rules.js

// ---------------------------------------------------------------- nights

// pageNights: nights.js

// ---------------------------------------------------------------- audit

// any archived transaction: search (filters kept in the address), label
// with a reason (chargebacks arrive on allowed transactions too)
const searchKeys = ['card', 'merchant', 'terminal', 'device', 'ip', 'min_amount', 'max_amount', 'decision', 'label', 'from', 'to'];
const labelReasons = ['chargeback', 'cardholder_confirmed', 'cardholder_denied', 'false_positive', 'first_party', 'other'];

async function pageSearch() {
  const qs = new URLSearchParams((location.hash.split('?')[1]) || '');
  const inputs = {};
  const form = h('form', { class: 'filters', id: 'search-form' }, searchKeys.map(k => {
    inputs[k] = k === 'decision' || k === 'label'
      ? h('select', { id: 's-' + k }, ['', ...(k === 'decision' ? ['allow', 'review', 'decline'] : ['fraud', 'legit', 'none'])]
        .map(o => h('option', { value: o, selected: qs.get(k) === o }, o || 'any')))
      : h('input', { id: 's-' + k, value: qs.get(k) || '', size: 12, placeholder: k === 'from' || k === 'to' ? 'YYYY-MM-DD' : '' });
    return h('label', {}, k.replace('_', ' '), inputs[k]);
  }), h('button', { type: 'submit', id: 'btn-search', class: 'primary' }, 'Search'));
  form.addEventListener('submit', ev => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const k of searchKeys) if (inputs[k].value.trim()) p.set(k, inputs[k].value.trim());
    location.hash = '#/search?' + p.toString();
  });
  const reason = h('select', { id: 's-reason' }, labelReasons.map(r => h('option', { value: r }, r.replace(/_/g, ' '))));
  const canAct = me && me.role !== 'read-only';
  const out = h('div', { id: 'search-result' });
  main.replaceChildren(h('h1', {}, 'Search transactions'), form,
    h('p', { class: 'muted' }, 'Label with reason ', reason, ' (the label goes to vigild like a case\'s verdict)'), out);
  const r = await api('GET', '/api/search?' + qs.toString());
  if (!r.ok) { out.replaceChildren(h('p', { class: 'error' }, r.data.error)); return; }
  const label = async (t, fraud) => {
    const x = await api('POST', '/api/txns/' + encodeURIComponent(t.txn_id) + '/label', { fraud, reason: reason.value, time: t.time, expected: t.label });
    if (x.ok) { say(`${t.txn_id} labelled ${x.data.label} (${x.data.reason})`); await pageSearch(); }
    else if (x.status === 409 && 'label' in x.data) { say(`${t.txn_id}: ${x.data.error}; not changed`, true); await pageSearch(); }
    else say(x.data.error || ('error ' + x.status), true);
  };
  out.replaceChildren(
    h('p', { id: 'search-count' }, `${r.data.items.length}${r.data.more ? '+' : ''} transactions ` +
      (r.data.from ? `from ${fmtTime(r.data.from)} to ${fmtTime(r.data.to)}` : `of the whole archive up to ${fmtTime(r.data.to)}`),
      h('span', { class: 'muted' }, ` (${r.data.scanned} read in ${num(r.data.ms, 0)} ms${r.data.via === 'entity_index' ? ', by the entity index' : ''}${r.data.truncated ? ', stopped at the read limit: narrow the range' : ''}) `), csvButton('search-table', 'search')),
    ...unreadableNote(r.data),
    table(['time', 'transaction', 'card', 'merchant', 'device', 'ip', { t: 'amount', num: 1 }, { t: 'score', num: 1 }, 'decision', 'label', ''],
      r.data.items.map(t => h('tr', {},
        h('td', { class: 'time' }, fmtTime(t.time)),
        h('td', {}, t.decision === 'allow' ? t.txn_id : h('a', { href: '#/case/' + encodeURIComponent(t.txn_id) }, t.txn_id)),
        h('td', {}, entityLink('card', t.card_id)), h('td', {}, entityLink('merchant', t.merchant_id)),
        h('td', {}, entityLink('device', t.device_id)), h('td', {}, entityLink('ip', t.ip)),
        h('td', { class: 'num' }, num(t.amount) + ' ' + t.currency), h('td', { class: 'num' }, t.score),
        h('td', {}, badge(t.decision)), h('td', {}, t.label ? badge(t.label) : ''),
        h('td', {}, canAct ? [h('button', { type: 'button', class: 'btn-label-fraud fraud', onclick: () => label(t, true) }, 'Fraud'), ' ',
          h('button', { type: 'button', class: 'btn-label-legit legit', onclick: () => label(t, false) }, 'Legitimate')] : ''))),
      { id: 'search-table' }));
}

// the rule file's list files: entries with who, why, until when; add, remove
async function pageLists() {
  const r = await api('GET', '/api/lists');
  if (!r.ok) { main.replaceChildren(h('h1', {}, 'Lists'), h('p', { class: 'error' }, r.data.error)); return; }
  const canAct = me && me.role !== 'read-only';
  const edit = async (name, action, body) => {
    const x = await api('POST', '/api/lists/' + encodeURIComponent(name) + '/' + action, body);
    if (x.ok) { say(`${x.data.value} ${action === 'add' ? 'added to' : 'removed from'} ${name}${x.data.changed ? '' : ' (no change)'}`); await pageLists(); }
    else say(x.data.error || ('error ' + x.status), true);
  };
  // STATE/lists.json that does not load: entries without who and why, edits refused
  const re = r.data.records_error, rw = re && re.where ? re.where : {};
  main.replaceChildren(h('h1', {}, 'Lists'), re ? h('p', { class: 'error', id: 'lists-records-error' },
    `${[rw.file, rw.line, rw.column].filter(x => x).join(':')}: ${re.message}; adding and removing entries is refused until it is repaired or removed`) : '',
  ...r.data.lists.map(l => {
    const value = h('input', { class: 'list-value', size: 16, placeholder: 'entry' });
    const why = h('input', { class: 'list-reason', size: 24, placeholder: 'reason' });
    const until = h('input', { class: 'list-expires', size: 12, placeholder: 'expires (optional)' });
    return h('div', { class: 'card', id: 'list-' + l.name },
      h('h2', {}, h('code', {}, l.name), ` · ${l.kind} · ${l.count} entries`, h('span', { class: 'muted' }, ' · ' + l.path)),
      canAct ? h('div', { class: 'actions' }, value, why, until,
        h('button', { type: 'button', class: 'btn-list-add', onclick: () =>
          edit(l.name, 'add', Object.assign({ value: value.value.trim(), reason: why.value.trim() }, until.value.trim() ? { expires: until.value.trim() } : {})) }, 'Add')) : '',
      csvButton('list-table-' + l.name, 'list-' + l.name),
      table(['entry', 'reason', 'who', 'added', 'expires', ''], l.entries.map(e => h('tr', {},
        h('td', {}, h('code', {}, e.value)), h('td', {}, e.reason || ''), h('td', {}, e.who || ''),
        h('td', {}, fmtTime(e.added)), h('td', {}, fmtTime(e.expires)),
        h('td', {}, canAct ? h('button', { type: 'button', class: 'btn-list-remove', onclick: () => {
          const reason = prompt(`Remove ${e.value} from ${l.name}: why?`);
          if (reason) edit(l.name, 'remove', { value: e.value, reason });
        } }, 'Remove') : ''))), { id: 'list-table-' + l.name }));
  }));
}

async function pageAudit() {
  const r = await api('GET', '/api/audit');
  if (!r.ok) { main.replaceChildren(h('h1', {}, 'Audit log'), h('p', { class: 'error' }, r.data.error)); return; }
  main.replaceChildren(h('h1', {}, 'Audit log'), table(['when', 'who', 'action', 'target', 'before', 'after'],
    r.data.entries.map(e => h('tr', {}, h('td', {}, fmtTime(e.ts)), h('td', {}, e.who), h('td', {}, e.action), h('td', {}, e.target),
      h('td', {}, h('code', {}, JSON.stringify(e.before))), h('td', {}, h('code', {}, JSON.stringify(e.after).slice(0, 400))))), { id: 'audit-table' }));
}

// ---------------------------------------------------------------- router

async function route() {
  if (!token() && !byCert) {
    // a client certificate may name the analyst already: ask before a token
    const r = await fetch('/api/me');
    if (r.ok) { byCert = true; } else { askToken(''); return; }
  }
  if (!me) {
    const r = await api('GET', '/api/me');
    if (!r.ok) return;
    me = r.data;
    document.getElementById('whoami').textContent = me.name + ' (' + me.role + ')';
  }
  const hash = location.hash || '#/queue';
  for (const a of document.querySelectorAll('header nav a')) a.classList.toggle('active', hash.startsWith(a.getAttribute('href')));
  say('');
  try {
    if (hash.startsWith('#/case/')) await pageCase(decodeURIComponent(hash.slice(7)));
    else if (hash.startsWith('#/entity/')) {
      const [path, q] = hash.slice(9).split('?');
      const i = path.indexOf('/');
      await pageEntity(path.slice(0, i), decodeURIComponent(path.slice(i + 1)), new URLSearchParams(q || ''));
    } else if (hash.startsWith('#/overview')) await pageOverview(new URLSearchParams(hash.split('?')[1] || ''));
    else if (hash.startsWith('#/rules')) await pageRules();
    else if (hash.startsWith('#/nights')) await pageNights();
    else if (hash.startsWith('#/audit')) await pageAudit();
    else if (hash.startsWith('#/search')) await pageSearch();
    else if (hash.startsWith('#/lists')) await pageLists();
    else await pageQueue();
  } catch (e) {
    say('error: ' + e.message, true);
  }
}

window.addEventListener('hashchange', route);
route();
