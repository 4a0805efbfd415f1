// SPDX-License-Identifier: MIT
// vigil-console's rules page (docs/console.md, "Rules"): on one laptop
// screen, the rules with their mode (a toggle that edits the text), the
// threshold each compares against and the value in force, the editor with
// Check, Back-test, the server's diff before Deploy, a proposal waiting
// for a second approver (--deploy-approvers 2), and the versions with Roll
// back. Uses app.js's helpers (h, api, table, badge, diagView,
// backtestView); every value goes in as text.
'use strict';

function fmtThr(v) {
  if (v === null || v === undefined) return '–';
  return Number.isInteger(v) ? String(v) : String(+v.toPrecision(4));
}

// "zscore_high 4 (fallback)" with the why as a tooltip
function thresholdCell(list) {
  if (!list || !list.length) return h('span', { class: 'muted' }, '–');
  return list.map(t => {
    const tuned = t.kind !== 'constant' && t.tuned;
    const state = t.kind === 'constant' ? 'constant' : tuned ? 'tuned' : 'fallback';
    const tip = t.kind === 'constant' ? `${t.name}: a constant` :
      `${t.name} = ${t.kind}(${t.feature}, ${t.param})${t.by ? ' by ' + t.by : ''}, fallback ${fmtThr(t.fallback)}` +
      (tuned ? `; tuned from ${t.samples} samples` : `; not tuned: ${t.why || 'no value'}`);
    return h('div', { class: 'thr', title: tip },
      h('code', {}, t.name), ' ', h('b', {}, fmtThr(t.value)), ' ', badge(state, state === 'fallback' ? 'review' : state === 'tuned' ? 'allow' : ''));
  });
}

function diffView(lines, id) {
  if (!lines || !lines.length) return h('p', { class: 'muted', id }, 'No change against the deployed file.');
  return h('pre', { class: 'diff', id }, lines.map(l => h('span', { class: l[0] === '+' ? 'add' : 'del' }, l + '\n')));
}

async function pageRules() {
  const r = await api('GET', '/api/rules?days=' + (sessionStorage.getItem('vigil-days') || 7));
  if (!r.ok) { main.replaceChildren(h('h1', {}, 'Rules'), h('p', { class: 'error' }, r.data.error)); return; }
  const d = r.data;
  rulesBase = d.hash;
  const canEdit = me && (me.role === 'rule-editor' || me.role === 'admin');
  const ta = h('textarea', { id: 'rules-text', spellcheck: 'false' });
  ta.value = d.text;
  const out = h('div', { id: 'rules-out' });
  const days = h('input', { id: 'bt-days', type: 'number', min: 1, max: 90, value: 7, size: 3 });
  const nightly = h('input', { id: 'bt-nightly', type: 'checkbox' });

  const check = async () => {
    const x = await api('POST', '/api/rules/check', { text: ta.value });
    if (x.ok) out.replaceChildren(h('p', { class: 'ok', id: 'check-result' }, `compiles: version ${x.data.version}, ${x.data.rules} rules`));
    else {
      out.replaceChildren(diagView(x.data));
      if (x.data.errors && x.data.errors[0]) selectLine(ta, x.data.errors[0].line);
    }
    return x.ok;
  };
  const backtest = async () => {
    out.replaceChildren(h('p', { class: 'muted', id: 'bt-running' }, 'replaying the archive with both files…'));
    const x = await api('POST', '/api/rules/backtest', { text: ta.value, days: parseInt(days.value, 10) || 7, nightly: nightly.checked });
    if (x.ok) out.replaceChildren(backtestView(x.data));
    else if (x.status === 422) out.replaceChildren(diagView(x.data));
    else out.replaceChildren(h('p', { class: 'error', id: 'backtest-error' }, x.data.error));
  };
  // Deploy comes after the diff: the server diffs the deployed file and the
  // edited text, the page shows it, and only then the Deploy button
  const review = async () => {
    const x = await api('POST', '/api/rules/diff', { text: ta.value });
    if (!x.ok) { out.replaceChildren(h('p', { class: 'error' }, x.data.error)); return; }
    const msg = h('input', { id: 'deploy-message', placeholder: 'what and why', size: 40 });
    const deploy = async () => {
      const y = await api('POST', '/api/rules/deploy', { text: ta.value, base_hash: rulesBase, message: msg.value || undefined });
      if (y.status === 202) {
        say(`Proposed (${y.data.proposal.hash.slice(0, 8)}): another analyst must approve it`);
        await pageRules();
        document.getElementById('rules-out').replaceChildren(h('p', { class: 'ok', id: 'deploy-result' }, 'proposed; waiting for a second approver'));
      } else if (y.ok) {
        say(y.data.changed ? `Deployed version ${y.data.version} (${y.data.hash}); vigild reloads it` : 'No change to deploy');
        await pageRules();
        document.getElementById('rules-out').replaceChildren(h('p', { class: 'ok', id: 'deploy-result' }, y.data.changed ? `deployed as version ${y.data.version}` : 'unchanged'));
      } else if (y.status === 409) out.replaceChildren(h('p', { class: 'error', id: 'deploy-result' }, y.data.error + ` (current ${y.data.current_hash})`));
      else if (y.status === 422) out.replaceChildren(diagView(y.data));
      else out.replaceChildren(h('p', { class: 'error', id: 'deploy-result' }, y.data.error));
    };
    out.replaceChildren(
      h('h2', {}, `Diff against the deployed file: +${x.data.added} −${x.data.removed} lines`),
      diffView(x.data.diff, 'deploy-diff'),
      x.data.changed ? h('div', { class: 'actions' }, msg,
        h('button', { type: 'button', id: 'btn-deploy', class: 'primary', disabled: !canEdit, onclick: deploy },
          d.approvers > 1 ? 'Propose for approval' : 'Deploy')) : '');
  };
  // a mode toggle is an edit of the text: the server rewrites the rule's
  // mode clause in what the editor holds, then Review diff / Deploy
  const setMode = async (rule, mode) => {
    const x = await api('POST', '/api/rules/mode', { text: ta.value, rule, mode });
    if (!x.ok) { say(x.data.error || ('error ' + x.status), true); return; }
    ta.value = x.data.text;
    say(`${rule} set ${mode} in the editor: back-test it, review the diff and deploy`);
    out.replaceChildren(h('h2', {}, `${rule}: mode ${mode} (not deployed yet)`), diffView(x.data.diff, 'mode-diff'),
      h('div', { class: 'actions' }, h('button', { type: 'button', id: 'btn-review-mode', onclick: review }, 'Review diff and deploy')));
  };

  const rtable = table([{ t: 'rule' }, { t: 'mode' }, { t: 'pts', num: 1 }, { t: 'hits', num: 1 }, { t: 'fraud', num: 1 }, { t: 'prec.', num: 1 }, 'compares against', 'reason'],
    d.rules.map(x => {
      const sel = h('select', { class: 'rule-mode', 'data-rule': x.name, disabled: !canEdit, title: 'active adds its points; shadow is evaluated and reported, never decides; disabled is not evaluated' },
        ['active', 'shadow', 'disabled'].map(m => h('option', { value: m, selected: x.mode === m }, m)));
      sel.addEventListener('change', () => setMode(x.name, sel.value));
      const promote = x.mode === 'shadow' && canEdit ?
        h('button', { type: 'button', class: 'btn-promote link-btn', 'data-rule': x.name, title: 'make it active', onclick: () => setMode(x.name, 'active') }, 'promote') : '';
      return h('tr', { class: 'mode-' + x.mode, 'data-rule': x.name },
        h('td', { class: 'ellipsis', title: `${x.name} (line ${x.line})` }, h('code', {}, x.name)),
        h('td', { class: 'nowrap' }, sel, promote),
        h('td', { class: 'num' }, x.points), h('td', { class: 'num' }, x.hits), h('td', { class: 'num' }, x.fraud),
        h('td', { class: 'num', title: `${x.fraud} frauds of ${x.labelled} labelled hits` }, pct(x.precision)),
        h('td', { class: 'thr-cell' }, thresholdCell(x.thresholds)),
        h('td', { class: 'ellipsis muted', title: x.reason }, x.reason));
    }), { id: 'rules-table', class: 'fixed' });

  const vr = await api('GET', '/api/rules/versions');
  const versions = (vr.ok ? vr.data.versions : []).slice().reverse();
  // STATE/rules/versions.jsonl that does not load: the versions that do, deploys refused
  const ve = vr.ok && vr.data.versions_error, vw = ve && ve.where ? ve.where : {};
  const verr = ve ? h('p', { class: 'error', id: 'versions-error' }, `${[vw.file, vw.line, vw.column].filter(x => x).join(':')}: ${ve.message}; deploys and roll-backs are refused until it is repaired`) : '';
  const vtable = table([{ t: 'v', num: 1 }, 'at', 'who', 'action', 'message', ''], versions.map(v => h('tr', {},
    h('td', { class: 'num' }, v.version), h('td', { class: 'time' }, fmtTime(v.at)), h('td', {}, v.who), h('td', {}, v.action),
    h('td', { class: 'ellipsis', title: v.message }, v.message), h('td', {}, v.hash === d.hash ? h('span', { class: 'muted' }, 'deployed') :
      h('button', { type: 'button', class: 'btn-rollback', 'data-version': v.version, disabled: !canEdit, onclick: async () => {
        if (!confirm('Roll back the rule file to version ' + v.version + '?')) return;
        const x = await api('POST', '/api/rules/rollback', { version: v.version, base_hash: rulesBase });
        if (x.ok) { say(`Rolled back to version ${v.version} (now version ${x.data.version})`); await pageRules(); }
        else say(x.data.error, true);
      } }, 'roll back')))), { id: 'versions-table', class: 'fixed' });

  // a proposal waiting for its second approver; STATE/rules/proposal.json that does not load
  const p = d.proposal, pe = d.proposal_error, pw = pe && pe.where ? pe.where : {};
  const perr = pe ? h('p', { class: 'error', id: 'proposal-error' }, `${[pw.file, pw.line, pw.column].filter(x => x).join(':')}: ${pe.message}; it cannot be approved, and a new proposal keeps it as proposal.json.damaged`) : '';
  const proposal = p ? h('div', { class: 'card proposal', id: 'proposal' },
    h('b', {}, `Proposed by ${p.proposed_by} at ${fmtTime(p.at)}`), p.message ? ` — ${p.message}` : '',
    h('span', { class: 'muted' }, ` (hash ${p.hash.slice(0, 8)}; against ${p.base_hash === d.hash ? 'the deployed file' : 'an older file: approving it fails'})`),
    diffView(p.diff, 'proposal-diff'),
    h('div', { class: 'actions' },
      h('button', { type: 'button', id: 'btn-approve', class: 'primary', disabled: !canEdit || p.proposed_by === me.name,
        title: p.proposed_by === me.name ? 'you proposed it: a different analyst must approve it' : 'deploy it',
        onclick: async () => {
          const x = await api('POST', '/api/rules/approve', { hash: p.hash });
          if (x.ok) { say(`Approved and deployed as version ${x.data.version}; vigild reloads it`); await pageRules(); }
          else say(x.data.error || ('error ' + x.status), true);
        } }, 'Approve and deploy'),
      h('button', { type: 'button', id: 'btn-reject', disabled: !canEdit, onclick: async () => {
        const x = await api('POST', '/api/rules/reject', { hash: p.hash });
        if (x.ok) { say('Proposal rejected'); await pageRules(); } else say(x.data.error || ('error ' + x.status), true);
      } }, p.proposed_by === me.name ? 'Withdraw' : 'Reject'))) : '';

  main.replaceChildren(
    h('h1', {}, 'Rules ', h('span', { class: 'muted small' }, `${d.path} · version ${d.version || '?'} · hash `, h('code', { id: 'rules-hash' }, d.hash),
      d.generation ? ` · thresholds of generation ${d.generation}` : ' · no generation yet: fallbacks in force',
      d.review_at != null ? h('span', { id: 'rules-bands', title: 'the bands in force (a tuned band: the generation\'s value), the file\'s numbers beside them' },
        ` · review at ${fmtThr(d.review_at)}` + (d.review_at !== d.file_review_at ? ` (file ${d.file_review_at})` : '') +
        `, decline at ${fmtThr(d.decline_at)}` + (d.decline_at !== d.file_decline_at ? ` (file ${d.file_decline_at})` : '')) : '',
      d.approvers > 1 ? ' · deploys need a second approver' : '')),
    d.errors && d.errors.length ? h('div', {}, h('p', { class: 'error' }, 'The deployed file does not compile:'), diagView(d)) : '',
    proposal, perr,
    h('div', { class: 'rules-split' },
      h('div', { class: 'rules-left' },
        h('h2', {}, `Last ${d.days} days: ${d.scored} scored, alert rate ${pct(d.alert_rate)}`),
        h('div', { class: 'scroll rules-scroll' }, rtable),
        h('h2', {}, 'Versions'), verr,
        h('div', { class: 'scroll versions-scroll' }, vtable)),
      h('div', { class: 'rules-right' }, ta,
        h('div', { class: 'actions' },
          h('button', { type: 'button', id: 'btn-check', onclick: check }, 'Check'),
          h('label', {}, 'days ', days), h('label', {}, nightly, ' nightly'),
          h('button', { type: 'button', id: 'btn-backtest', class: 'primary', disabled: !canEdit, onclick: backtest }, 'Back-test'),
          h('button', { type: 'button', id: 'btn-diff', disabled: !canEdit, onclick: review }, 'Review diff and deploy')),
        out)));
}
