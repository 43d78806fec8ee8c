// Similar objects: crops of the stored detections nearest to some examples; marks on them
// (positive or negative, by click, key or drag onto a drop zone); and the label proposals a
// positive mark makes for close neighbours and along tracks, confirmed or rejected in bulk.
// Mounted by the objects page (with a search form across streams and cameras) and by the review
// app (a panel under the frame, key o, with the selected box as the example). One keymap for
// both: s search again with the marks, p mark positives, m mark negatives, c decide proposals.
import { api, ApiError, escapeHtml, imageUrl } from './api.js';

const CROP = 96; // px of a crop tile
const frameImages = new Map(); // frameId -> Promise<HTMLImageElement>

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

function caption(o) {
  const parts = [`${escapeHtml(o.className)} ${o.score.toFixed(2)}`];
  if (o.distance !== undefined) parts.push(`d ${o.distance.toFixed(3)}`);
  if (o.via === 'track') parts.push('track');
  if (o.labelClass) parts.push(`✓ ${escapeHtml(o.labelClass)}`);
  return parts.join(' · ');
}

function tile(object, cls, draggable) {
  return `<figure class="tile ${cls}" data-id="${escapeHtml(object.id)}" title="${escapeHtml(object.id)}" draggable="${draggable}">
    <canvas width="${CROP}" height="${CROP}"></canvas>
    <figcaption>${caption(object)}</figcaption></figure>`;
}

const splitList = (value) =>
  value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/**
 * Renders the similar-objects view into `host` and returns its controller: `search(ids,
 * className)` starts from example object ids, `handleKey(e)` answers the view's keys (true when
 * it used the key).
 */
export function mountSimilarObjects(host, { searchForm = false } = {}) {
  const state = { ids: [], className: '', examples: new Map(), marks: new Map(), results: [], proposals: [], rejected: new Set() };
  const $ = (selector) => host.querySelector(selector);
  let dragged = null; // the tile being dragged

  function setStatus(text, kind = '') {
    const el = $('.similar-status');
    el.textContent = text;
    el.style.color = kind === 'bad' ? 'var(--bad)' : kind === 'good' ? 'var(--good)' : '';
  }

  function showError(err, fallbackField) {
    const field = err instanceof ApiError ? (err.errors[0]?.field ?? fallbackField) : fallbackField;
    ($(field === 'className' ? '.class-error' : '.search-error') ?? $('.class-error')).textContent = err.message;
    setStatus(err.message, 'bad');
  }

  const markClass = (id) => state.marks.get(id) ?? '';
  const proposalClass = (id) => (state.rejected.has(id) ? 'negative' : 'positive');

  function render() {
    const form = searchForm
      ? `<form class="search">
          <label>example object ids <input name="ids" value="${escapeHtml(state.ids.join(','))}" placeholder="object id, …" size="40"></label>
          <label>streams <input name="streams" placeholder="all"></label>
          <label>cameras <input name="cameras" placeholder="all"></label>
          <label>k <input name="k" type="number" value="40" min="1" max="200"></label>
          <button class="primary" type="submit">Search (s)</button>
          <div class="field-error search-error"></div>
        </form>`
      : '<div class="field-error search-error"></div>';
    host.innerHTML = `<div class="similar">
      <section>
        ${searchForm ? '<h2>Search by example</h2>' : ''}
        ${form}
        <div class="tiles examples">${[...state.examples.values()].map((o) => tile(o, 'example', false)).join('')}</div>
        <h2>Similar objects <small>click: positive → negative → none; or drag onto a label</small></h2>
        <div class="tiles results">${state.results.map((o) => tile(o, markClass(o.id), true)).join('') || '<p class="empty">no results yet</p>'}</div>
      </section>
      <aside class="similar-side">
        <h2>Label</h2>
        <label>class <input name="className" value="${escapeHtml(state.className)}" placeholder="e.g. cyclist"></label>
        <div class="field-error class-error"></div>
        <div class="drops">
          <div class="drop positive" data-drop="positive">is this class</div>
          <div class="drop negative" data-drop="negative">not this class</div>
        </div>
        <p><button data-action="positive">Mark positives (p)</button> <button data-action="negative">Mark negatives (m)</button></p>
        <h2>Proposals <small>${state.proposals.length}</small></h2>
        <div class="tiles proposals">${state.proposals.map((o) => tile(o, proposalClass(o.id), true)).join('') || '<p class="empty">a positive mark proposes its class for close neighbours and along tracks</p>'}</div>
        <p><button class="primary" data-action="decide" ${state.proposals.length ? '' : 'disabled'}>Confirm green, reject red (c)</button></p>
        <div class="keys"><kbd>s</kbd><span>search again with the marks</span><kbd>p</kbd><span>mark positives</span><kbd>m</kbd><span>mark negatives</span><kbd>c</kbd><span>decide the proposals</span></div>
        <div class="status similar-status"></div>
      </aside>
    </div>`;
    const all = [...state.examples.values(), ...state.results, ...state.proposals];
    for (const fig of host.querySelectorAll('figure.tile')) {
      const o = all.find((x) => x.id === fig.dataset.id);
      drawCrop(fig.querySelector('canvas'), o).catch(() => fig.classList.add('broken'));
    }
    $('form.search')?.addEventListener('submit', (e) => {
      e.preventDefault();
      search();
    });
    $('input[name=className]').addEventListener('input', (e) => (state.className = e.target.value.trim()));
    $('.results').addEventListener('click', (e) => {
      const fig = e.target.closest('figure');
      if (fig) setMark(fig, { undefined: 'positive', positive: 'negative', negative: undefined }[state.marks.get(fig.dataset.id)]);
    });
    $('.proposals').addEventListener('click', (e) => {
      const fig = e.target.closest('figure');
      if (fig) setProposal(fig, !state.rejected.has(fig.dataset.id));
    });
    for (const fig of host.querySelectorAll('figure.tile[draggable=true]')) {
      // The tile itself, not its id: an object can be both a result and a proposal.
      fig.addEventListener('dragstart', (e) => {
        dragged = fig;
        e.dataTransfer.setData('text/plain', fig.dataset.id);
      });
    }
    for (const zone of host.querySelectorAll('.drop')) {
      zone.addEventListener('dragover', (e) => {
        e.preventDefault();
        zone.classList.add('over');
      });
      zone.addEventListener('dragleave', () => zone.classList.remove('over'));
      zone.addEventListener('drop', (e) => {
        e.preventDefault();
        zone.classList.remove('over');
        const fig = dragged;
        dragged = null;
        if (!fig) return;
        if (fig.closest('.proposals')) setProposal(fig, zone.dataset.drop === 'negative');
        else setMark(fig, zone.dataset.drop);
      });
    }
    $('[data-action=positive]').addEventListener('click', () => mark('positive'));
    $('[data-action=negative]').addEventListener('click', () => mark('negative'));
    $('[data-action=decide]').addEventListener('click', decide);
  }

  function setMark(fig, mark) {
    if (mark) state.marks.set(fig.dataset.id, mark);
    else state.marks.delete(fig.dataset.id);
    fig.className = `tile ${mark ?? ''}`;
  }

  function setProposal(fig, rejected) {
    if (rejected) state.rejected.add(fig.dataset.id);
    else state.rejected.delete(fig.dataset.id);
    fig.className = `tile ${proposalClass(fig.dataset.id)}`;
  }

  const marked = (polarity) => [...state.marks].filter(([, m]) => m === polarity).map(([id]) => id);

  /** Searches by the example ids plus the results marked positive, leaving out those marked negative. */
  async function search() {
    if (searchForm) state.ids = splitList($('input[name=ids]').value);
    const positives = [...new Set([...state.ids, ...marked('positive')])];
    if (positives.length === 0) return showError(new Error('give at least one example object id'), 'positives');
    const filter = {};
    const k = searchForm ? Number($('input[name=k]').value) : 40;
    if (searchForm) {
      const streams = splitList($('input[name=streams]').value);
      const cameras = splitList($('input[name=cameras]').value);
      if (streams.length) filter.streamIds = streams;
      if (cameras.length) filter.cameraIds = cameras;
    }
    try {
      const res = await api('/v1/objects/search', {
        method: 'POST',
        body: { positives, negatives: marked('negative'), k, filter, ...(state.className ? { className: state.className } : {}) },
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
    const ids = polarity === 'positive' ? [...state.examples.keys(), ...marked('positive')] : marked('negative');
    if (!state.className) return showError(new Error('name the class first'), 'className');
    if (ids.length === 0) return setStatus(polarity === 'positive' ? 'nothing to mark: search first' : 'click results twice to mark them negative', 'bad');
    try {
      const res = await api('/v1/objects/labels', { method: 'POST', body: { objectIds: [...new Set(ids)], className: state.className, polarity } });
      if (polarity === 'positive') {
        state.proposals = res.proposals;
        state.rejected = new Set();
      }
      render();
      setStatus(`${res.marked} marked ${polarity === 'positive' ? state.className : `not ${state.className}`}; ${res.proposals.length} proposals`, 'good');
    } catch (err) {
      showError(err, 'className');
    }
  }

  async function decide() {
    const confirm = state.proposals.filter((p) => !state.rejected.has(p.id)).map((p) => p.id);
    const reject = state.proposals.filter((p) => state.rejected.has(p.id)).map((p) => p.id);
    try {
      const res = await api('/v1/objects/proposals/decisions', { method: 'POST', body: { className: state.className, confirm, reject } });
      state.proposals = [];
      state.rejected = new Set();
      render();
      setStatus(`${res.confirmed} confirmed, ${res.rejected} rejected`, 'good');
    } catch (err) {
      showError(err, 'className');
    }
  }

  render();
  return {
    /** Starts over from these example objects, proposing `className` for marks. */
    search(ids, className = '') {
      Object.assign(state, { ids, className, examples: new Map(), marks: new Map(), results: [], proposals: [], rejected: new Set() });
      render();
      return search();
    },
    handleKey(e) {
      if (e.target.closest?.('input, textarea, select')) return false;
      const action = { s: search, p: () => mark('positive'), m: () => mark('negative'), c: () => state.proposals.length && decide() }[e.key];
      if (!action) return false;
      action();
      return true;
    },
  };
}
