// The operations page: per stream, frames scored per minute and drift p-values over time
// (uPlot charts), queue depth, model version, the last drift decision, the latest retraining
// outcome, and the newest video ingests with their progress. Reads /v1/ops and /v1/videos,
// i.e. the platform's own data; refreshes every 15 s.
import { api, escapeHtml, imageUrl, renderSignIn, signedInUser } from './api.js';

const root = document.getElementById('root');
const who = document.getElementById('who');
const charts = [];

function chart(el, title, xs, series, opts = {}) {
  const width = Math.max(320, el.clientWidth - 8);
  charts.push(
    new uPlot(
      {
        title,
        width,
        height: 180,
        scales: { x: { time: true }, y: opts.log ? { distr: 3 } : {} },
        axes: [{ stroke: '#9aa3b2' }, { stroke: '#9aa3b2' }],
        series: [{}, ...series],
      },
      [xs, ...series.map((s) => s.data)],
      el,
    ),
  );
}

const pct = (x) => `${(100 * x).toFixed(1)}%`;
/** The last check's novel frames (unlike every reference frame), the first few as thumbnails. */
function novelFrames(ids) {
  if (!ids?.length) return '';
  return `<div class="novel-frames" title="frames unlike every reference frame, farthest first">${ids
    .slice(0, 6)
    .map((id) => `<img data-frame="${escapeHtml(id)}" alt="novel frame ${escapeHtml(id)}" width="80">`)
    .join('')}</div>`;
}

// Thumbnails by frame id, kept across the 15 s refreshes (a frame's pixels never change); the
// blob URLs are released when the set of shown frames is replaced.
let thumbnails = new Map();
function showThumbnails() {
  const shown = new Map();
  for (const img of root.querySelectorAll('img[data-frame]')) {
    const id = img.dataset.frame;
    const url = thumbnails.get(id) ?? shown.get(id) ?? imageUrl(`/v1/frames/${id}/image`);
    shown.set(id, url);
    url.then((u) => (img.src = u)).catch(() => {});
  }
  for (const [id, url] of thumbnails) if (!shown.has(id)) url.then((u) => URL.revokeObjectURL(u)).catch(() => {});
  thumbnails = shown;
}

/** Frames routed today by reason, the share of scored frames, and the budget used. */
function selectionLine(sel) {
  const reasons = Object.entries(sel.byReason)
    .map(([reason, n]) => `${escapeHtml(reason)} ${n.frames}`)
    .join(' · ');
  const budget = sel.dailyBudget === null ? 'no daily budget' : `${sel.tasks} of ${sel.dailyBudget} tasks (${pct(sel.tasks / Math.max(1, sel.dailyBudget))})`;
  const bar =
    sel.latest && sel.latest.threshold !== null ? `<br>bar ${sel.latest.threshold.toFixed(4)} for a target of ${pct(sel.latest.targetRate)} of frames` : '';
  return `${escapeHtml(sel.mode)}: ${sel.framesRouted} of ${sel.framesScored} frames routed (${pct(sel.framesRouted / Math.max(1, sel.framesScored))})${reasons ? ` · ${reasons}` : ''}<br>${budget}${bar}`;
}

/** The newest videos: status, segments done of total, frames taken, and a Temporal UI link. */
function videosCard(videos, temporal) {
  if (!videos.length) return '<section class="card" id="videos"><h2>Videos</h2><p>No video ingested yet.</p></section>';
  const rows = videos
    .map((v) => {
      const p = v.progress;
      const link = temporal
        ? `<a href="${escapeHtml(`${temporal.temporalUiUrl}/namespaces/${temporal.namespace}/workflows/${v.workflowId}`)}" target="_blank" rel="noopener">workflow</a>`
        : '';
      return `<tr data-video="${escapeHtml(v.id)}"><td>${escapeHtml(v.fileName ?? v.id.slice(0, 8))}</td><td>${escapeHtml(v.streamId)}</td><td>${escapeHtml(v.status)}${v.error ? ` <span title="${escapeHtml(v.error)}">⚠</span>` : ''}</td>
        <td><progress max="${p.segmentsTotal ?? 1}" value="${p.segmentsDone}"></progress> ${p.segmentsDone}/${p.segmentsTotal ?? '?'}</td><td>${p.framesSampled}</td><td>${link}</td></tr>`;
    })
    .join('');
  return `<section class="card" id="videos"><h2>Videos</h2><table><thead><tr><th>file</th><th>stream</th><th>status</th><th>segments</th><th>frames</th><th></th></tr></thead><tbody>${rows}</tbody></table></section>`;
}

let temporalConfig = null;
async function render() {
  temporalConfig ??= await fetch('/app/config.json')
    .then((r) => (r.ok ? r.json() : null))
    .catch(() => null);
  const [ops, { videos }] = await Promise.all([api('/v1/ops'), api('/v1/videos?limit=10')]);
  charts.splice(0).forEach((c) => c.destroy());
  const run = ops.latestRetraining;
  root.innerHTML = `<div class="cards">
    <section class="card"><h2>Latest retraining</h2>${run ? `<p><b>${escapeHtml(run.status)}</b> · ${escapeHtml(run.trigger)} · ${escapeHtml(new Date(run.updatedAt).toLocaleString())}<br>${escapeHtml(run.reason)}<br><code>${escapeHtml(run.id)}</code></p>` : '<p>No retraining run yet.</p>'}</section>
    ${videosCard(videos, temporalConfig)}
    ${ops.streams
      .map(
        (s, i) => `<section class="card" data-stream="${escapeHtml(s.id)}"><h2>${escapeHtml(s.id)}</h2>
      <dl class="kv"><dt>model</dt><dd>${escapeHtml(s.modelVersion ?? '—')}${s.modelPrecision === 'int8' ? ' (INT8)' : ''}</dd><dt>open tasks</dt><dd>${s.openTasks}</dd><dt>frames</dt><dd>${s.frames}</dd>
      <dt>selection today</dt><dd>${selectionLine(s.selection)}</dd>
      <dt>last drift check</dt><dd>${s.lastDrift ? `${s.lastDrift.drift ? '<b style="color:var(--bad)">drift</b>' : 'no drift'} · ${escapeHtml(new Date(s.lastDrift.at).toLocaleTimeString())}<br>${escapeHtml(s.lastDrift.summary ?? '')}${novelFrames(s.lastDrift.novelFrameIds)}` : '—'}</dd></dl>
      <div class="chart" id="fps-${i}"></div><div class="chart" id="drift-${i}"></div></section>`,
      )
      .join('')}
  </div>`;
  showThumbnails();
  ops.streams.forEach((s, i) => {
    const fps = s.framesPerMinute;
    chart(
      document.getElementById(`fps-${i}`),
      'frames scored per second (last hour)',
      fps.map((r) => Date.parse(r.at) / 1000),
      [{ label: 'frames/s', stroke: '#4da3ff', data: fps.map((r) => r.frames / 60) }],
    );
    chart(
      document.getElementById(`drift-${i}`),
      'drift: smallest corrected p-value (log)',
      s.drift.map((d) => Date.parse(d.at) / 1000),
      [
        { label: 'p', stroke: '#ffb454', data: s.drift.map((d) => Math.max(d.p, 1e-12)) },
        { label: 'alpha', stroke: '#ff6b6b', dash: [4, 4], data: s.drift.map(() => 0.05) },
      ],
      { log: true },
    );
  });
}

const user = await signedInUser();
const start = (u) => {
  who.textContent = `${u.name} (${u.role})`;
  render().catch((err) => (root.innerHTML = `<div class="empty">${escapeHtml(err.message)}</div>`));
  setInterval(() => render().catch(() => undefined), 15_000);
};
if (user) start(user);
else renderSignIn(root, start, 'a lead token');
