// SPDX-License-Identifier: MIT
// vigil-console's overview (#/overview?from=&to=): per UTC day, from GET
// /api/overview, the alert volume, the precision of the alerts labelled so
// far, the money caught (alerts labelled fraud) and missed (fraud labelled
// on allowed transactions), and the labels analysts gave: four charts and
// the table of the days (CSV). Loaded before app.js; uses its helpers at
// call time.
'use strict';

let overviewCharts = [];

// the currency with the most money in the days (the charts draw one)
function overviewCurrency(days) {
  const sum = {};
  for (const d of days) for (const m of [d.caught, d.missed_money]) for (const [c, v] of Object.entries(m)) sum[c] = (sum[c] || 0) + v;
  return Object.keys(sum).sort((a, b) => sum[b] - sum[a])[0] || 'EUR';
}

async function pageOverview(qs) {
  const from = h('input', { id: 'o-from', value: qs.get('from') || '', size: 12, placeholder: 'YYYY-MM-DD' });
  const to = h('input', { id: 'o-to', value: qs.get('to') || '', size: 12, placeholder: 'YYYY-MM-DD' });
  const form = h('form', { class: 'filters', id: 'overview-form' }, h('label', {}, 'from', from), h('label', {}, 'to (included)', to),
    h('button', { type: 'submit', class: 'primary' }, 'Show'),
    h('span', { class: 'muted' }, 'at most 92 days; the last 14 indexed by default'));
  form.addEventListener('submit', ev => {
    ev.preventDefault();
    const p = new URLSearchParams();
    if (from.value.trim()) p.set('from', from.value.trim());
    if (to.value.trim()) p.set('to', to.value.trim());
    location.hash = '#/overview' + (p.toString() ? '?' + p.toString() : '');
  });
  const title = h('h1', {}, 'Overview');
  const p = new URLSearchParams();
  for (const k of ['from', 'to']) if (qs.get(k)) p.set(k, qs.get(k));
  const r = await api('GET', '/api/overview' + (p.toString() ? '?' + p.toString() : ''));
  if (!r.ok) { main.replaceChildren(title, form, h('p', { class: 'error', id: 'overview-error' }, r.data.error)); return; }
  const d = r.data, days = d.days, cur = overviewCurrency(days);
  const tot = k => days.reduce((a, x) => a + x[k], 0);
  const money = (k) => days.reduce((a, x) => a + (x[k][cur] || 0), 0);
  const analysts = [...new Set(days.flatMap(x => Object.keys(x.by_analyst)))].sort();
  const fr = tot('fraud'), lg = tot('legit');
  const rows = days.map(x => h('tr', {},
    h('td', {}, x.day), h('td', { class: 'num' }, x.scored), h('td', { class: 'num' }, x.alerts),
    h('td', { class: 'num' }, x.scored ? pct(x.alerts / x.scored) : '–'),
    h('td', { class: 'num' }, x.fraud), h('td', { class: 'num' }, x.legit), h('td', { class: 'num' }, pct(x.precision)),
    h('td', { class: 'num' }, moneyText(x.caught)), h('td', { class: 'num' }, x.missed),
    h('td', { class: 'num' }, moneyText(x.missed_money) + (x.missed_unknown ? ` (+${x.missed_unknown} unknown)` : '')),
    h('td', { class: 'num' }, x.labels),
    h('td', {}, Object.entries(x.by_analyst).map(([a, n]) => `${a} ${n}`).join(', '))));
  const box = id => h('div', { class: 'card' }, h('div', { class: 'chart-box' }, h('canvas', { id })));
  main.replaceChildren(title, form,
    h('p', { id: 'overview-summary' }, `${d.from} – ${d.to}: ${tot('alerts')} alerts of ${tot('scored')} scored · precision ${fr + lg ? pct(fr / (fr + lg)) : '–'} (${fr} fraud, ${lg} legitimate of the alerts labelled) · caught ${money('caught').toFixed(2)} ${cur} · missed ${money('missed_money').toFixed(2)} ${cur} (${tot('missed')} frauds) · ${tot('labels')} analyst labels`,
      h('span', { class: 'muted' }, ` (${num(d.ms, 0)} ms${d.truncated ? ', stopped at the read limit: narrow the window' : ''})`)),
    ...unreadableNote(d),
    h('div', { class: 'grid', id: 'overview-charts' }, box('ov-alerts'), box('ov-precision'), box('ov-money'), box('ov-throughput')),
    h('h2', {}, 'Per day ', csvButton('overview-table', `overview-${d.from}-${d.to}`)),
    table(['day', { t: 'scored', num: 1 }, { t: 'alerts', num: 1 }, { t: 'alert rate', num: 1 }, { t: 'fraud', num: 1 }, { t: 'legit', num: 1 },
      { t: 'precision', num: 1 }, { t: 'caught', num: 1 }, { t: 'missed', num: 1 }, { t: 'missed money', num: 1 }, { t: 'analyst labels', num: 1 }, 'by analyst'],
    rows, { id: 'overview-table' }));
  setTimeout(() => {
    if (typeof Chart === 'undefined') return;
    for (const c of overviewCharts) c.destroy();
    const labels = days.map(x => x.day.slice(5));
    const opts = (title, y) => ({ maintainAspectRatio: false, animation: false,
      plugins: { title: { display: true, text: title } }, scales: { y: Object.assign({ beginAtZero: true }, y || {}) } });
    const palette = ['#1f5fa8', '#1b7a3a', '#a86400', '#4b438f', '#b3261e', '#66707a'];
    overviewCharts = [
      new Chart(document.getElementById('ov-alerts'), { type: 'bar',
        data: { labels, datasets: [{ label: 'alerts (reviews + declines)', data: days.map(x => x.alerts), backgroundColor: '#a86400' }] },
        options: opts('Alert volume', { ticks: { precision: 0 } }) }),
      new Chart(document.getElementById('ov-precision'), { type: 'line',
        data: { labels, datasets: [{ label: 'precision % (alerts labelled fraud / labelled)', data: days.map(x => x.precision === null ? null : 100 * x.precision), borderColor: '#1f5fa8', spanGaps: true, tension: 0 }] },
        options: opts('Precision (labels as known)', { max: 100 }) }),
      new Chart(document.getElementById('ov-money'), { type: 'bar',
        data: { labels, datasets: [
          { label: 'caught ' + cur, data: days.map(x => x.caught[cur] || 0), backgroundColor: '#1b7a3a' },
          { label: 'missed ' + cur, data: days.map(x => x.missed_money[cur] || 0), backgroundColor: '#b3261e' }] },
        options: opts('Money caught and missed (' + cur + ')') }),
      new Chart(document.getElementById('ov-throughput'), { type: 'bar',
        data: { labels, datasets: (analysts.length ? analysts : ['—']).map((a, i) => ({ label: a, stack: 'a',
          data: days.map(x => x.by_analyst[a] || 0), backgroundColor: palette[i % palette.length] })) },
        options: Object.assign(opts('Analyst labels per day', { stacked: true, ticks: { precision: 0 } }), {}) })];
  }, 0);
}
