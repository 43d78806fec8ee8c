// Objects: search stored detections by example across streams, mark examples as (not) of a
// class, and confirm or reject the label proposals a mark makes for close neighbours and along
// tracks, in bulk. Opened from the review app (key o) with the selected box as the example.
import { api, ApiError, escapeHtml, imageUrl, renderSignIn, signedInUser, token } from './api.js';

const root = document.getElementById('root');
const who = document.getElementById('who');
const CROP = 96; // px of a crop tile
const frameImages = new Map(); // frameId -> Promise<HTMLImageElement>

// { examples: Map<id, object>, marks: Map<id, 'positive'|'negative'>, results: [], proposals: [], rejected: Set<id> }
let state = { examples: new Map(), marks: new Map(), results: [], proposals: [], rejected: new Set() };

function setStatus(text, kind = '') {
  const el = document.getElementById('status');
  el.textContent = text;
  el.style.color = kind === 'bad' ? 'var(--bad)' : kind === 'good' ? 'var(--good)' : '';
}

function frameImage(object) {
  if (!frameImages.has(object.frameId)) {
    frameImages.set(
      object.frameId,
      imageUrl(object.imageUrl).then(
        (url) =>
          new Promise((resolve, reject) => {
            const img = new Image();
            img.onload = () => resolve(img);
            img.onerror = reject;
            img.src = url;
          }),
      ),
    );
  }
  return frameImages.get(object.frameId);
}

/** Draws the object's box (with some context) into a canvas tile. */
async function drawCrop(canvas, object) {
  const img = await frameImage(object);
  const w = img.naturalWidth;
  const h = img.naturalHeight;
  const b = object.box;
  const side = Math.max((b.x2 - b.x1) * w, (b.y2 - b.y1) * h, 8) * 1.4;
  const cx = ((b.x1 + b.x2) / 2) * w;
  const cy = ((b.y1 + b.y2) / 2) * h;
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#222';
  ctx.fillRect(0, 0, CROP, CROP);
  ctx.drawImage(img, cx - side / 2, cy - side / 2, side, side, 0, 0, CROP, CROP);
}

function tile(object, { cls, caption }) {
  return `<figure class="tile ${cls}" data-id="${escapeHtml(object.id)}" title="${escapeHtml(object.id)}">
    <canvas width="${CROP}" height="${CROP}"></canvas>
    <figcaption>${caption}</figcaption></figure>`;
}

function caption(o) {
  const parts = [`${escapeHtml(o.className)} ${o.score.toFixed(2)}`];
  if (o.distance !== undefined) parts.push(`d ${o.distance.toFixed(3)}`);
  if (o.via === 'track') parts.push('track');
  if (o.labelClass) parts.push(`✓ ${escapeHtml(o.labelClass)}`);
  return parts.join(' · ');
}

function render() {
  const cls = document.getElementById('class')?.value ?? new URLSearchParams(location.search).get('class') ?? '';
  root.innerHTML = `<div class="objects">
    <section>
      <h2>Search by example</h2>
      <form id="search" class="search">
        <label>example object ids <input id="ids" value="${escapeHtml([...state.examples.keys()].join(','))}" placeholder="object id, …" size="40"></label>
        <label>streams <input id="streams" placeholder="all"></label>
        <label>cameras <input id="cameras" placeholder="all"></label>
        <label>k <input id="k" type="number" value="40" min="1" max="200"></label>
        <button class="primary" type="submit">Search (s)</button>
        <div class="field-error" id="search-error"></div>
      </form>
      <div class="tiles" id="examples">${[...state.examples.values()].map((o) => tile(o, { cls: 'example', caption: caption(o) })).join('')}</div>
      <h2>Similar objects <small>click: positive → negative → none</small></h2>
      <div class="tiles" id="results">${state.results.map((o) => tile(o, { cls: state.marks.get(o.id) ?? '', caption: caption(o) })).join('') || '<p class="empty">no results yet</p>'}</div>
    </section>
    <aside class="side">
      <h2>Label</h2>
      <label>class <input id="class" value="${escapeHtml(cls)}" placeholder="e.g. cyclist"></label>
      <div class="field-error" id="class-error"></div>
      <p><button id="mark-pos">Mark positives as this class (p)</button></p>
      <p><button id="mark-neg">Mark negatives as not this class (x)</button></p>
      <h2>Proposals <small>${state.proposals.length}</small></h2>
      <div class="tiles" id="proposals">${state.proposals.map((o) => tile(o, { cls: state.rejected.has(o.id) ? 'negative' : 'positive', caption: caption(o) })).join('') || '<p class="empty">a positive mark proposes its class for close neighbours and along tracks</p>'}</div>
      <p><button class="primary" id="decide" ${state.proposals.length ? '' : 'disabled'}>Confirm green, reject red (c)</button></p>
      <h2>Keys</h2>
      <div class="keys"><kbd>s</kbd><span>search again with the marks</span><kbd>p</kbd><span>mark positives</span><kbd>x</kbd><span>mark negatives</span><kbd>c</kbd><span>decide the proposals</span></div>
      <div class="status" id="status"></div>
    </aside>
  </div>`;
  const all = [...state.examples.values(), ...state.results, ...state.proposals];
  for (const fig of root.querySelectorAll('figure.tile')) {
    const o = all.find((x) => x.id === fig.dataset.id);
    drawCrop(fig.querySelector('canvas'), o).catch(() => fig.classList.add('broken'));
  }
  root.querySelector('#search').addEventListener('submit', (e) => {
    e.preventDefault();
    search();
  });
  root.querySelector('#results').addEventListener('click', (e) => {
    const fig = e.target.closest('figure');
    if (!fig) return;
    const next = { undefined: 'positive', positive: 'negative', negative: undefined }[state.marks.get(fig.dataset.id)];
    if (next) state.marks.set(fig.dataset.id, next);
    else state.marks.delete(fig.dataset.id);
    fig.className = `tile ${next ?? ''}`;
  });
  root.querySelector('#proposals').addEventListener('click', (e) => {
    const fig = e.target.closest('figure');
    if (!fig) return;
    if (state.rejected.has(fig.dataset.id)) state.rejected.delete(fig.dataset.id);
    else state.rejected.add(fig.dataset.id);
    fig.className = `tile ${state.rejected.has(fig.dataset.id) ? 'negative' : 'positive'}`;
  });
  root.querySelector('#mark-pos').addEventListener('click', () => mark('positive'));
  root.querySelector('#mark-neg').addEventListener('click', () => mark('negative'));
  root.querySelector('#decide').addEventListener('click', decide);
}

const list = (id) =>
  document
    .getElementById(id)
    .value.split(',')
    .map((s) => s.trim())
    .filter(Boolean);

function showError(err, fallbackField) {
  const field = err instanceof ApiError ? (err.errors[0]?.field ?? fallbackField) : fallbackField;
  const el = document.getElementById(field === 'className' ? 'class-error' : 'search-error');
  (el ?? document.getElementById('search-error')).textContent = err.message;
  setStatus(err.message, 'bad');
}

/** Searches by the example ids plus the results marked positive, leaving out those marked negative. */
async function search() {
  const ids = list('ids');
  const positives = [...new Set([...ids, ...[...state.marks].filter(([, m]) => m === 'positive').map(([id]) => id)])];
  const negatives = [...state.marks].filter(([, m]) => m === 'negative').map(([id]) => id);
  if (positives.length === 0) return showError(new Error('give at least one example object id'), 'positives');
  const filter = {};
  if (list('streams').length) filter.streamIds = list('streams');
  if (list('cameras').length) filter.cameraIds = list('cameras');
  try {
    const className = document.getElementById('class').value.trim();
    const res = await api('/v1/objects/search', {
      method: 'POST',
      body: { positives, negatives, k: Number(document.getElementById('k').value), filter, ...(className ? { className } : {}) },
    });
    state.examples = new Map(res.query.map((o) => [o.id, o]));
    state.results = res.neighbours;
    for (const id of [...state.marks.keys()]) if (!res.neighbours.some((n) => n.id === id)) state.marks.delete(id);
    render();
    setStatus(`${res.neighbours.length} similar objects`, 'good');
  } catch (err) {
    showError(err, 'positives');
  }
}

async function mark(polarity) {
  const className = document.getElementById('class').value.trim();
  const ids =
    polarity === 'positive'
      ? [...state.examples.keys(), ...[...state.marks].filter(([, m]) => m === 'positive').map(([id]) => id)]
      : [...state.marks].filter(([, m]) => m === 'negative').map(([id]) => id);
  if (!className) return showError(new Error('name the class first'), 'className');
  if (ids.length === 0) return setStatus(polarity === 'positive' ? 'nothing to mark: search first' : 'click results twice to mark them negative', 'bad');
  try {
    const res = await api('/v1/objects/labels', { method: 'POST', body: { objectIds: [...new Set(ids)], className, polarity } });
    if (polarity === 'positive') {
      state.proposals = res.proposals;
      state.rejected = new Set();
    }
    render();
    setStatus(`${res.marked} marked ${polarity === 'positive' ? className : `not ${className}`}; ${res.proposals.length} proposals`, 'good');
  } catch (err) {
    showError(err, 'className');
  }
}

async function decide() {
  const className = document.getElementById('class').value.trim();
  const confirm = state.proposals.filter((p) => !state.rejected.has(p.id)).map((p) => p.id);
  const reject = state.proposals.filter((p) => state.rejected.has(p.id)).map((p) => p.id);
  try {
    const res = await api('/v1/objects/proposals/decisions', { method: 'POST', body: { className, confirm, reject } });
    state.proposals = [];
    state.rejected = new Set();
    render();
    setStatus(`${res.confirmed} confirmed, ${res.rejected} rejected`, 'good');
  } catch (err) {
    showError(err, 'className');
  }
}

document.addEventListener('keydown', (e) => {
  if (e.target.closest('input')) return;
  if (e.key === 's') search();
  if (e.key === 'p') mark('positive');
  if (e.key === 'x') mark('negative');
  if (e.key === 'c' && state.proposals.length) decide();
});

async function start() {
  const user = await signedInUser();
  if (!user) return renderSignIn(root, start);
  who.innerHTML = `${escapeHtml(user.name)} · ${escapeHtml(user.role)} <button id="signout-top">sign out</button>`;
  who.querySelector('#signout-top').addEventListener('click', () => {
    token.clear();
    location.reload();
  });
  const example = new URLSearchParams(location.search).get('object');
  render();
  if (example) {
    document.getElementById('ids').value = example;
    await search();
  }
}
start();
