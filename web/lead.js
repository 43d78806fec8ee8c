// The ML lead's page: streams and their loops, queue depth, the sampling policy editor (with the
// API's validation messages shown beside each field), recent labels, label export (COCO, YOLO),
// COCO import with a dry run, reviewers' gold accuracy and agreement, and consensus adjudication.
import { api, escapeHtml, imageUrl, renderSignIn, signedInUser, token } from './api.js';

const root = document.getElementById('root');
const who = document.getElementById('who');
let config = { temporalUiUrl: '', namespace: 'default' };

// The policy form: one input per field; `field` matches the API's error paths (e.g. band.high).
const FIELDS = [
  {
    field: 'selection',
    label: 'selection',
    type: 'choice',
    choices: ['ranked', 'band'],
    help: 'ranked: the most uncertain frames least like what the model learned from, paced over the day; band: every uncertain frame until the budget is spent',
  },
  { field: 'band.low', label: 'band low', type: 'number', step: '0.01', help: 'detections scoring at least this are uncertain' },
  { field: 'band.high', label: 'band high', type: 'number', step: '0.01', help: 'detections scoring below this are uncertain' },
  {
    field: 'dailyBudget',
    label: 'daily budget (empty: none)',
    type: 'number',
    step: '1',
    nullable: true,
    help: 'tasks this stream may send to people per UTC day',
  },
  {
    field: 'pacingWindow',
    label: 'pacing window',
    type: 'number',
    step: '1',
    help: 'ranked: the bar is set among this many recent frames (near-duplicates left out)',
  },
  {
    field: 'pacingWarmup',
    label: 'pacing warm-up',
    type: 'number',
    step: '1',
    help: 'ranked: frames seen before the bar is used (until then, a sample at the budget rate)',
  },
  {
    field: 'novelFrameDistance',
    label: 'novel frame distance',
    type: 'number',
    step: '0.01',
    help: "ranked: frames this far (cosine) from the model's reference frames go to review whole, even with no uncertain detection; 0: off",
  },
  { field: 'maxTasksPerFrame', label: 'max tasks per frame', type: 'number', step: '1', help: 'detections of one frame a person is asked about' },
  { field: 'randomRate', label: 'random rate', type: 'number', step: '0.001', help: 'share of other frames sent anyway, for an unbiased measure of the model' },
  {
    field: 'randomBudgetShare',
    label: 'random share of budget',
    type: 'number',
    step: '0.01',
    help: 'ranked: random samples take at most this share of the daily budget',
  },
  {
    field: 'diversityMinDistance',
    label: 'diversity min distance',
    type: 'number',
    step: '0.0001',
    help: 'skip frames this close (cosine) to one already queued or labelled',
  },
  { field: 'priority', label: 'priority', type: 'number', step: '1', help: 'higher is claimed first by reviewers' },
  {
    field: 'driftBoost.bandWiden',
    label: 'drift boost: band widen',
    type: 'number',
    step: '0.01',
    help: 'while drift is detected, the band grows by this on each side',
  },
  {
    field: 'driftBoost.randomRateFactor',
    label: 'drift boost: random × ',
    type: 'number',
    step: '1',
    help: 'while drift is detected, the random rate is multiplied by this',
  },
  {
    field: 'consensus.share',
    label: 'consensus share',
    type: 'number',
    step: '0.01',
    help: 'share of routed frames labelled by several reviewers and merged (0: off)',
  },
  { field: 'consensus.reviewers', label: 'consensus reviewers', type: 'number', step: '1', help: 'different reviewers who label a consensus frame' },
  { field: 'consensus.quorum', label: 'consensus quorum', type: 'number', step: '0.05', help: 'share of them who must draw an object for it to be kept' },
  { field: 'consensus.minIou', label: 'consensus min IoU', type: 'number', step: '0.05', help: "overlap at which two reviewers' boxes are one object" },
  {
    field: 'consensus.adjudicateBelow',
    label: 'adjudicate below',
    type: 'number',
    step: '0.05',
    help: 'agreement (mean pairwise F1) under which a lead decides the frame',
  },
  { field: 'classBands', label: 'per-class bands (JSON)', type: 'json', help: 'e.g. {"sign": {"low": 0.2, "high": 0.5}} replaces the band for that class' },
];

const get = (obj, path) => path.split('.').reduce((o, k) => (o == null ? undefined : o[k]), obj);
function set(obj, path, value) {
  const keys = path.split('.');
  let o = obj;
  for (const k of keys.slice(0, -1)) o = o[k] ??= {};
  o[keys.at(-1)] = value;
}

const loopLink = (streamId) =>
  `${config.temporalUiUrl}/namespaces/${encodeURIComponent(config.namespace)}/workflows/${encodeURIComponent(`stream-${streamId}`)}`;

async function render() {
  const [{ streams }, { depth }] = await Promise.all([api('/v1/streams'), api('/v1/queue')]);
  root.innerHTML = `<div class="cards">
    <section class="card" style="grid-column: 1 / -1"><h2>Streams</h2>
      <table><thead><tr><th>stream</th><th>frames</th><th>open tasks</th><th>loop</th><th>model</th><th>policy</th><th>scored</th><th></th></tr></thead><tbody>
      ${streams
        .map(
          (s) => `<tr>
        <td>${escapeHtml(s.id)}</td><td>${s.frames}</td><td>${s.pendingTasks}</td>
        <td>${escapeHtml(s.loop?.state ?? (s.loopServer ? `${s.loopServer.state ?? s.loopServer.execution} (no worker answering)` : 'not running'))}</td><td>${escapeHtml(s.loop?.modelVersion ?? s.loopServer?.modelVersion ?? '—')}</td><td>v${s.loop?.policyVersion ?? '—'}</td>
        <td>${s.loop?.totals.framesScored ?? 0}</td>
        <td><a href="${loopLink(s.id)}" target="_blank" rel="noopener">Temporal UI</a>
          <button data-action="${s.loop?.paused ? 'resume' : 'pause'}" data-stream="${escapeHtml(s.id)}">${s.loop?.paused ? 'Resume' : 'Pause'}</button></td></tr>`,
        )
        .join('')}
      </tbody></table></section>
    <section class="card"><h2>Queue depth</h2>
      <table><thead><tr><th>stream</th><th>class</th><th>open</th><th>leased</th><th>oldest</th></tr></thead><tbody>
      ${depth.map((d) => `<tr><td>${escapeHtml(d.streamId)}</td><td>${escapeHtml(d.className ?? 'whole frame')}</td><td>${d.open}</td><td>${d.leased}</td><td>${d.oldestCreatedAt ? escapeHtml(new Date(d.oldestCreatedAt).toLocaleString()) : '—'}</td></tr>`).join('') || '<tr><td colspan="5">No open tasks.</td></tr>'}
      </tbody></table></section>
    <section class="card"><h2>Sampling policy</h2>
      <p><select id="policy-stream">${streams.map((s) => `<option>${escapeHtml(s.id)}</option>`).join('')}</select> <span id="policy-version"></span></p>
      <form id="policy-form" class="form-grid" novalidate></form>
      <p><button class="primary" id="policy-save">Save new version</button> <span id="policy-status" class="status"></span></p>
    </section>
    <section class="card"><h2>Recent labels</h2><div id="labels"></div>
      <h2 style="margin-top:14px">Export labels</h2>
      <p><select id="export-stream"><option value="">all streams</option>${streams.map((s) => `<option>${escapeHtml(s.id)}</option>`).join('')}</select>
        from <input id="export-from" type="datetime-local"> to <input id="export-to" type="datetime-local">
        <select id="export-format"><option value="coco">COCO JSON</option><option value="yolo">YOLO (zip)</option></select> <button id="export">Download</button></p>
      <h2 style="margin-top:14px">Import labels (COCO)</h2>
      <p>into <select id="import-stream">${streams.map((s) => `<option>${escapeHtml(s.id)}</option>`).join('')}</select>
        annotations <input id="import-annotations" type="file" accept=".json,application/json">
        images <input id="import-images" type="file" accept="image/png,image/jpeg" multiple></p>
      <p><button id="import-check">Check (dry run)</button> <button id="import-run">Import</button> <span id="import-status" class="status"></span></p>
      <div id="import-result"></div>
    </section>
    <section class="card" style="grid-column: 1 / -1"><h2>Reviewers</h2>
      <p>Accuracy is the mean F1 (IoU 0.5, same class) of a reviewer's answers on gold frames; mark a labelled frame gold in Recent labels.</p>
      <div id="reviewers"></div></section>
    <section class="card" style="grid-column: 1 / -1"><h2>Consensus</h2>
      <p>Frames several reviewers labelled (the policy's consensus share): their agreement, and those that wait for you to decide.</p>
      <div id="adjudications"></div><div id="consensus"></div></section>
    <section class="card" style="grid-column: 1 / -1"><h2>Frames set aside by the loop</h2><div id="failed-frames"></div></section>
  </div>`;
  root.querySelectorAll('button[data-action]').forEach((b) =>
    b.addEventListener('click', async () => {
      await api(`/v1/streams/${encodeURIComponent(b.dataset.stream)}/${b.dataset.action}`, { method: 'POST' });
      setTimeout(render, 500);
    }),
  );
  const select = root.querySelector('#policy-stream');
  select.addEventListener('change', () => loadPolicy(select.value));
  root.querySelector('#policy-save').addEventListener('click', () => savePolicy(select.value));
  root.querySelector('#export').addEventListener('click', exportLabels);
  root.querySelector('#import-check').addEventListener('click', () => importCoco(true));
  root.querySelector('#import-run').addEventListener('click', () => importCoco(false));
  if (streams.length) await loadPolicy(select.value);
  await Promise.all([renderLabels(), renderFailedFrames(), renderReviewers(), renderConsensus()]);
}

const fixed = (v) => (v === null ? '—' : v.toFixed(2));

// Reviewer quality: rolling accuracy on gold frames, and a Resume button for those the queue paused.
async function renderReviewers() {
  const { settings, reviewers } = await api('/v1/reviewers');
  const el = root.querySelector('#reviewers');
  el.innerHTML = `<p>Gold tasks are ${Math.round(settings.rate * 100)}% of claims; a reviewer is paused below ${settings.passScore} over their last ${settings.window} answers (after ${settings.minAnswers}).</p>
    <table><thead><tr><th>reviewer</th><th>gold answers</th><th>accuracy</th><th>precision</th><th>recall</th><th>class accuracy</th><th>consensus answers</th><th>agreement</th><th>status</th></tr></thead><tbody>
    ${
      reviewers
        .map(
          (
            r,
          ) => `<tr data-reviewer="${escapeHtml(r.name)}"><td>${escapeHtml(r.name)}</td><td>${r.answers}</td><td>${fixed(r.accuracy)}</td><td>${fixed(r.precision)}</td><td>${fixed(r.recall)}</td><td>${fixed(r.classAccuracy)}</td><td>${r.consensusAnswers}</td><td>${fixed(r.agreement)}</td>
        <td>${r.pausedAt ? `<span style="color: var(--bad)" title="${escapeHtml(r.pausedReason ?? '')}">paused</span> <button data-resume="${escapeHtml(r.name)}">Resume</button>` : 'active'}</td></tr>`,
        )
        .join('') || '<tr><td colspan="9">No reviewers.</td></tr>'
    }
  </tbody></table>`;
  el.querySelectorAll('button[data-resume]').forEach((b) =>
    b.addEventListener('click', async () => {
      await api(`/v1/reviewers/${encodeURIComponent(b.dataset.resume)}/resume`, { method: 'POST' });
      await renderReviewers();
    }),
  );
}

// Frames that could not be scored (missing blob, undecodable, over the pixel limit): the stream
// went on without them; this is where someone notices.
async function renderFailedFrames() {
  const { frames } = await api('/v1/frames?status=failed&limit=20');
  root.querySelector('#failed-frames').innerHTML =
    `<table><thead><tr><th>when</th><th>stream</th><th>camera</th><th>reason</th><th>detail</th><th>frame</th></tr></thead><tbody>
    ${frames.map((f) => `<tr><td>${escapeHtml(new Date(f.failedAt).toLocaleString())}</td><td>${escapeHtml(f.streamId)}</td><td>${escapeHtml(f.cameraId)}</td><td>${escapeHtml(f.reason)}</td><td>${escapeHtml(f.detail)}</td><td><code>${escapeHtml(f.frameId)}</code></td></tr>`).join('') || '<tr><td colspan="6">None: every frame was scored.</td></tr>'}
  </tbody></table>`;
}

async function loadPolicy(streamId) {
  const current = await api(`/v1/streams/${encodeURIComponent(streamId)}/policy`);
  root.querySelector('#policy-version').textContent = `version ${current.version}`;
  const form = root.querySelector('#policy-form');
  form.innerHTML = FIELDS.map((f) => {
    const value = get(current.policy, f.field);
    const input =
      f.type === 'json'
        ? `<textarea data-field="${f.field}" rows="3">${escapeHtml(JSON.stringify(value ?? {}, null, 1))}</textarea>`
        : f.type === 'choice'
          ? `<select data-field="${f.field}">${f.choices.map((c) => `<option${c === value ? ' selected' : ''}>${escapeHtml(c)}</option>`).join('')}</select>`
          : `<input data-field="${f.field}" type="number" step="${f.step}" value="${value ?? ''}">`;
    return `<label for="f-${f.field}">${escapeHtml(f.label)}</label><div>${input}<div class="field-help">${escapeHtml(f.help)}</div><div class="field-error" data-error-for="${f.field}"></div></div>`;
  }).join('');
}

async function savePolicy(streamId) {
  const status = root.querySelector('#policy-status');
  root.querySelectorAll('[data-error-for]').forEach((e) => (e.textContent = ''));
  root.querySelectorAll('[data-field]').forEach((e) => e.classList.remove('invalid'));
  const policy = {};
  for (const f of FIELDS) {
    const el = root.querySelector(`[data-field="${f.field}"]`);
    const raw = el.value.trim();
    if (f.type === 'json') {
      try {
        set(policy, f.field, raw ? JSON.parse(raw) : {});
      } catch {
        return showErrors([{ field: f.field, message: 'not valid JSON' }]);
      }
    } else if (f.type === 'choice') set(policy, f.field, raw);
    else if (raw === '' && f.nullable) set(policy, f.field, null);
    else if (raw !== '') set(policy, f.field, Number(raw));
  }
  try {
    const saved = await api(`/v1/streams/${encodeURIComponent(streamId)}/policy`, { method: 'PUT', body: policy });
    status.textContent = `saved as version ${saved.version}${saved.appliedToLoop ? '; the loop uses it from its next batch' : '; the loop picks it up at its next batch'}`;
    root.querySelector('#policy-version').textContent = `version ${saved.version}`;
  } catch (err) {
    showErrors(err.errors?.length ? err.errors : [{ field: '', message: err.message }]);
  }
}

function showErrors(errors) {
  const status = root.querySelector('#policy-status');
  const unplaced = [];
  for (const e of errors) {
    // Errors name the deepest field (e.g. classBands.sign.high); show them at the nearest input.
    const field = FIELDS.map((f) => f.field).find((f) => e.field === f || e.field.startsWith(`${f}.`));
    const slot = field && root.querySelector(`[data-error-for="${field}"]`);
    if (slot) {
      slot.textContent = e.message;
      root.querySelector(`[data-field="${field}"]`).classList.add('invalid');
    } else unplaced.push(`${e.field}: ${e.message}`);
  }
  status.textContent = unplaced.length ? `not saved: ${unplaced.join('; ')}` : 'not saved: fix the fields marked in red';
}

const COLOURS = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#42d4f4'];
const rects = (boxes, w, h, colour, dashed) =>
  boxes
    .map(
      (b) =>
        `<rect x="${b.x1 * w}" y="${b.y1 * h}" width="${(b.x2 - b.x1) * w}" height="${(b.y2 - b.y1) * h}" fill="none" stroke="${colour}" stroke-width="2"${dashed ? ' stroke-dasharray="6 4"' : ''}><title>${escapeHtml(b.className)}</title></rect>`,
    )
    .join('');

// Consensus: recent results, and each frame whose reviewers disagreed drawn with every answer, for
// the lead to pick the merged boxes or one reviewer's as the label.
async function renderConsensus() {
  const [{ results }, { results: waiting }] = await Promise.all([api('/v1/consensus?limit=20'), api('/v1/consensus?adjudication=needed&limit=5')]);
  const classes = (byClass) =>
    Object.entries(byClass)
      .map(([c, v]) => `${escapeHtml(c)} ${v.toFixed(2)}`)
      .join(', ');
  root.querySelector('#consensus').innerHTML =
    `<table><thead><tr><th>when</th><th>stream</th><th>reviewers</th><th>agreement</th><th>per class</th><th>outcome</th></tr></thead><tbody>
    ${
      results
        .map(
          (
            r,
          ) => `<tr><td>${escapeHtml(new Date(r.createdAt).toLocaleString())}</td><td>${escapeHtml(r.streamId)}</td><td>${r.answers.map((a) => escapeHtml(a.reviewer)).join(', ')}</td>
        <td>${r.agreement.toFixed(2)}</td><td>${classes(r.byClass)}</td><td>${r.adjudication === 'needed' ? 'waits for a lead' : r.adjudication === 'resolved' ? 'decided by a lead' : 'merged label'}</td></tr>`,
        )
        .join('') || '<tr><td colspan="6">No consensus frames yet.</td></tr>'
    }</tbody></table>`;
  const el = root.querySelector('#adjudications');
  el.innerHTML = waiting
    .map((r) => {
      const w = 480;
      const h = Math.round((w * r.height) / r.width);
      // The merged boxes in white dashes, drawn last so they show over the answers they came from.
      const choices = [
        { name: 'merged', boxes: r.merged, colour: '#fff', dashed: true },
        ...r.answers.map((a, i) => ({ name: a.reviewer, boxes: a.boxes, colour: COLOURS[i % COLOURS.length] })),
      ];
      return `<div class="adjudication" data-task="${r.taskId}" style="margin-bottom:14px">
        <p>Reviewers agreed ${r.agreement.toFixed(2)} on this frame (${escapeHtml(r.streamId)}): choose its label.</p>
        <div style="position:relative;width:${w}px;height:${h}px"><img data-frame="${r.frameId}" width="${w}" height="${h}" alt="frame">
          <svg width="${w}" height="${h}" style="position:absolute;left:0;top:0">${[...choices.slice(1), choices[0]].map((c) => rects(c.boxes, w, h, c.colour, c.dashed)).join('')}</svg></div>
        <p>${choices
          .map(
            (c, i) =>
              `<button data-choice="${i}" style="border-color:${c.colour}">Use ${c.name === 'merged' ? 'merged' : `${escapeHtml(c.name)}'s`} (${c.boxes.length} ${c.boxes.length === 1 ? 'box' : 'boxes'})</button>`,
          )
          .join(' ')}</p></div>`;
    })
    .join('');
  for (const [i, r] of waiting.entries()) {
    const card = el.querySelectorAll('.adjudication')[i];
    imageUrl(`/v1/frames/${r.frameId}/image`).then((url) => (card.querySelector('img').src = url));
    const options = [r.merged, ...r.answers.map((a) => a.boxes)];
    card.querySelectorAll('button[data-choice]').forEach((b) =>
      b.addEventListener('click', async () => {
        await api(`/v1/tasks/${r.taskId}/adjudicate`, { method: 'POST', body: { boxes: options[Number(b.dataset.choice)] } });
        await renderConsensus();
      }),
    );
  }
}

async function renderLabels() {
  const [{ labels }, { gold }] = await Promise.all([api('/v1/labels?limit=25'), api('/v1/gold')]);
  const isGold = new Set(gold.map((g) => g.frameId));
  const el = root.querySelector('#labels');
  el.innerHTML = `<table><thead><tr><th>when</th><th>reviewer</th><th>decision</th><th>stream</th><th>boxes</th><th>gold</th></tr></thead><tbody>
    ${
      labels
        .map(
          (
            l,
          ) => `<tr><td>${escapeHtml(new Date(l.createdAt).toLocaleString())}</td><td>${escapeHtml(l.reviewer ?? '—')}</td><td>${escapeHtml(l.decision)}</td><td>${escapeHtml(l.streamId)}</td><td>${l.boxes.length}</td>
      <td>${isGold.has(l.frameId) ? `gold <button data-ungold="${l.frameId}">Unmark</button>` : `<button data-gold="${l.frameId}" data-label="${l.id}">Mark gold</button>`}</td></tr>`,
        )
        .join('') || '<tr><td colspan="6">No labels yet.</td></tr>'
    }
  </tbody></table>`;
  el.querySelectorAll('button[data-gold], button[data-ungold]').forEach((b) =>
    b.addEventListener('click', async () => {
      // The row's own label becomes the reference (a frame may have newer ones).
      if (b.dataset.gold) await api(`/v1/frames/${b.dataset.gold}/gold`, { method: 'PUT', body: { labelId: b.dataset.label } });
      else await api(`/v1/frames/${b.dataset.ungold}/gold`, { method: 'DELETE' });
      await renderLabels();
    }),
  );
}

async function exportLabels() {
  const params = new URLSearchParams();
  const stream = root.querySelector('#export-stream').value;
  const from = root.querySelector('#export-from').value;
  const to = root.querySelector('#export-to').value;
  const yolo = root.querySelector('#export-format').value === 'yolo';
  if (stream) params.set('streamId', stream);
  if (from) params.set('from', new Date(from).toISOString());
  if (to) params.set('to', new Date(to).toISOString());
  const res = await api(`/v1/labels/export${yolo ? '/yolo' : ''}?${params}`, { raw: true });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(await res.blob());
  a.download = `labels-${stream || 'all'}${yolo ? '-yolo.zip' : '.json'}`;
  a.click();
}

async function importCoco(dryRun) {
  const status = root.querySelector('#import-status');
  const out = root.querySelector('#import-result');
  const annotations = root.querySelector('#import-annotations').files[0];
  if (!annotations) {
    status.textContent = 'choose the COCO JSON file';
    return;
  }
  const form = new FormData();
  form.append('annotations', annotations);
  for (const f of root.querySelector('#import-images').files) form.append('images', f, f.name);
  const stream = root.querySelector('#import-stream').value;
  status.textContent = dryRun ? 'checking…' : 'importing…';
  try {
    const r = await api(`/v1/streams/${encodeURIComponent(stream)}/imports/coco?dryRun=${dryRun}`, { method: 'POST', body: form });
    const t = r.totals;
    status.textContent = `${dryRun ? 'would import' : 'imported'}: ${t.images} images (${t.newFrames} new frames, ${t.newLabels} new labels, ${t.boxes} boxes); ${t.refused} refused`;
    out.innerHTML = r.refused.length
      ? `<table><thead><tr><th>refused</th><th>id</th><th>reason</th></tr></thead><tbody>${r.refused
          .map((e) => `<tr><td>${escapeHtml(e.entry)}</td><td>${escapeHtml(String(e.id ?? '—'))}</td><td>${escapeHtml(e.reason)}</td></tr>`)
          .join('')}</tbody></table>`
      : '';
    if (!dryRun) renderLabels();
  } catch (e) {
    status.textContent = `refused: ${e.message}`;
    out.innerHTML = '';
  }
}

config = await fetch('/app/config.json').then((r) => r.json());
const user = await signedInUser();
const start = (u) => {
  who.innerHTML = `${escapeHtml(u.name)} (${escapeHtml(u.role)}) <button id="signout">Sign out</button>`;
  who.querySelector('#signout').addEventListener('click', () => {
    token.clear();
    location.reload();
  });
  if (u.role !== 'lead' && u.role !== 'admin') {
    root.innerHTML = '<div class="empty">These pages are for leads. <a href="/">Review tasks instead</a>.</div>';
    return;
  }
  render().catch((err) => (root.innerHTML = `<div class="empty">${escapeHtml(err.message)}</div>`));
};
if (user) start(user);
else renderSignIn(root, start, 'a lead token');
