// SPDX-License-Identifier: MIT
// vigil-console's nights page (docs/console.md, "Nights"): per feature
// generation the model's metrics and every tuned threshold, tuned or not
// and why not (vigil-rebuild's summary), the chart of a threshold over the
// nights marking the generations where its fallback is in force, and, for
// admins, Make current. Uses app.js's helpers (h, api, table, badge, num).
'use strict';

let nightsChart = null;

// A generation's thresholds: the stored values (tuned, samples) with the
// rebuild summary's why for those that kept their fallback.
function genThresholds(g) {
  const why = {};
  for (const t of (g.summary && g.summary.thresholds) || []) if (t.why) why[t.name] = t.why;
  return (g.thresholds || []).map(t => Object.assign({}, t, { why: t.tuned ? null : (why[t.name] || 'fallback kept (no reason recorded)') }));
}

function fmtNum(v) {
  if (v === null || v === undefined) return '–';
  return Number.isInteger(v) ? String(v) : String(+v.toPrecision(5));
}

async function pageNights() {
  const r = await api('GET', '/api/generations');
  if (!r.ok) { main.replaceChildren(h('h1', {}, 'Nights'), h('p', { class: 'error' }, r.data.error)); return; }
  const gens = r.data.generations;
  // model.meta (vigil-rebuild): rows, frauds, valid_auc, valid_ap, rounds, ...
  const modelCell = m => {
    if (!m) return h('span', { class: 'muted' }, 'no model');
    if (typeof m !== 'object') return h('span', {}, String(m));
    const parts = [['AUC', 'valid_auc', 4], ['AP', 'valid_ap', 4], ['rows', 'rows'], ['frauds', 'frauds'], ['rounds', 'best_round']]
      .filter(([, k]) => typeof m[k] === 'number').map(([n, k, d]) => `${n} ${d ? m[k].toFixed(d) : m[k]}`);
    return h('span', { class: 'model-metrics' }, parts.length ? parts.join(' · ') : JSON.stringify(m).slice(0, 160));
  };
  // roll back (or forward) through vigild's admin endpoint: admins only,
  // asked first, guarded by the generation this page showed as current
  // (and only where the console was given vigild's admin endpoint)
  const isAdmin = me && me.role === 'admin' && r.data.set_current;
  const makeCurrent = async g => {
    if (!confirm(`Make generation ${g.generation} current instead of ${r.data.current || 'none'}? vigild switches to its features, thresholds and model within a second.`)) return;
    const x = await api('POST', '/api/generations/current', { generation: g.generation, expect_current: r.data.current, confirm: true, confirm_token: r.data.confirm_token });
    if (x.ok) { say(`Generation ${x.data.current} is current (was ${x.data.previous || 'none'})`); await pageNights(); }
    else say(x.data.error || 'refused', true);
  };
  const detail = h('div', { id: 'nights-detail' });
  const showGen = g => {
    const ths = genThresholds(g);
    detail.replaceChildren(h('h2', {}, `Thresholds of generation ${g.generation}`, h('span', { class: 'muted small' }, ` (as of ${fmtTime(g.as_of)})`)),
      ths.length ? table(['threshold', { t: 'value', num: 1 }, { t: 'previous', num: 1 }, { t: 'samples', num: 1 }, 'in force', 'why not tuned'],
        ths.map(t => h('tr', { class: t.tuned ? '' : 'fallback', 'data-threshold': t.name },
          h('td', {}, h('code', {}, t.name)), h('td', { class: 'num' }, fmtNum(t.value)), h('td', { class: 'num' }, fmtNum(t.previous)),
          h('td', { class: 'num' }, t.samples), h('td', {}, t.tuned ? badge('tuned', 'allow') : badge('fallback', 'review')),
          h('td', { class: 'muted' }, t.why || ''))), { id: 'nights-thresholds' })
        : h('p', { class: 'muted', id: 'nights-thresholds' }, 'No tuned thresholds in this generation (vigil-rebuild ran without --rules).'));
  };
  const rows = gens.map(g => {
    const ths = genThresholds(g);
    const fb = ths.filter(t => !t.tuned);
    const moved = ths.filter(t => t.moved !== null && Math.abs(t.moved) > 1e-12);
    const action = g.current || g.error || !isAdmin ? '' :
      h('button', { type: 'button', class: 'btn-make-current', 'data-generation': String(g.generation), onclick: ev => { ev.stopPropagation(); makeCurrent(g); } }, 'Make current');
    const tr = h('tr', { class: 'clickable', 'data-generation': String(g.generation) },
      h('td', { class: 'num' }, g.generation, g.current ? ' ' : '', g.current ? badge('current', 'allow') : '', action ? ' ' : '', action),
      h('td', { class: 'time' }, fmtTime(g.as_of)), h('td', { class: 'time' }, fmtTime(g.built_at)),
      h('td', { class: 'num' }, g.summary ? g.summary.cards : '–'), h('td', { class: 'num' }, g.summary && g.summary.labels ? g.summary.labels.used : '–'),
      h('td', {}, modelCell(g.model)),
      h('td', { class: 'thr-state', title: fb.map(t => `${t.name}: ${t.why}`).join('\n') },
        `${ths.length - fb.length} tuned`, fb.length ? [' · ', h('span', { class: 'warn' }, `${fb.length} on fallback`)] : ''),
      h('td', {}, moved.slice(0, 3).map(t => h('div', { class: 'thr' }, h('code', {}, t.name), ` ${num(t.previous, 3)} → ${num(t.value, 3)}`)),
        moved.length > 3 ? h('div', { class: 'muted' }, `and ${moved.length - 3} more`) : ''));
    tr.addEventListener('click', () => showGen(g));
    return tr;
  });
  const names = [...new Set(gens.flatMap(g => (g.thresholds || []).map(t => t.name)))];
  if (gens.some(g => g.model && typeof g.model.valid_auc === 'number')) names.unshift('model AUC', 'model AP');
  const sel = h('select', { id: 'thr-select' }, names.map(n => h('option', { value: n }, n)));
  const note = h('p', { id: 'nights-fallback-note', class: 'muted' });
  const box = h('div', { class: 'chart-box nights-chart-box' }, h('canvas', { id: 'nights-chart' }));
  const draw = () => {
    const asc = gens.slice().reverse();
    const pick = g => genThresholds(g).find(x => x.name === sel.value);
    // where the fallback is in force: said in words, and marked on the chart
    const fb = asc.filter(g => { const t = pick(g); return t && !t.tuned; });
    note.replaceChildren(sel.value.startsWith('model ') || !fb.length ? '' :
      h('span', { class: 'warn' }, `${sel.value}: the fallback is in force in ${fb.length} of ${asc.length} generations`),
      sel.value.startsWith('model ') || !fb.length ? '' : ` (latest: ${pick(fb[fb.length - 1]).why})`);
    if (typeof Chart === 'undefined') return;
    if (nightsChart) nightsChart.destroy();
    const values = asc.map(g => {
      if (sel.value === 'model AUC') return g.model ? g.model.valid_auc : null;
      if (sel.value === 'model AP') return g.model ? g.model.valid_ap : null;
      const t = pick(g); return t ? t.value : null;
    });
    nightsChart = new Chart(document.getElementById('nights-chart'), {
      type: 'line',
      data: { labels: asc.map(g => (g.as_of || '').slice(0, 10)), datasets: [
        { label: sel.value + ' (tuned)', data: values, borderColor: '#1f5fa8', tension: 0 },
        { label: 'fallback in force', data: asc.map((g, i) => { const t = pick(g); return t && !t.tuned ? values[i] : null; }),
          borderColor: '#a86400', backgroundColor: '#a86400', showLine: false, pointStyle: 'crossRot', pointRadius: 7, pointBorderWidth: 2 }] },
      options: { maintainAspectRatio: false, animation: false } });
  };
  sel.addEventListener('change', draw);
  const current = gens.find(g => g.current) || gens[0];
  main.replaceChildren(h('h1', {}, 'Nights'),
    h('div', { class: 'actions' }, h('label', {}, 'over the nights: ', sel), note), box,
    h('div', { class: 'scroll nights-scroll' },
      table([{ t: 'generation', num: 1 }, 'as of', 'built', { t: 'cards', num: 1 }, { t: 'labels', num: 1 }, 'model', 'thresholds', 'moved'], rows, { id: 'nights-table' })),
    detail);
  if (current) showGen(current);
  setTimeout(draw, 0);
}
