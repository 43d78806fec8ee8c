// The reviewer's page: claim a task, see the frame with every predicted box, fix what is wrong
// with the mouse or the keyboard, get a tight box from box assist, submit, next task.
import { api, ApiError, escapeHtml, imageUrl, renderSignIn, signedInUser, token } from './api.js';
import { mountSimilarObjects } from './similar-objects.js';

const CLASS_COLOURS = ['#4da3ff', '#ff8fb1', '#4cd97b', '#ffd24d', '#c792ea', '#5fd7d7', '#ff9f43', '#a3be8c', '#ebcb8b'];
const SHOW_SCORE = 0.3; // predictions below this are not drawn (the band starts at 0.3 by default)
const CLICK_REGION = 48; // px: the region box assist uses around a click

const root = document.getElementById('root');
const who = document.getElementById('who');
let state = null; // { task, frame, predictions, boxes, selected, history, mode, classes, dirty }
let leaseTimer = null;
let similar = null; // { drawer, view } while the similar-objects panel is open

/** Opens the similar-objects panel under the frame with the selected box (a stored detection) as
 * the example; the task and its lease stay as they are. */
function openSimilar() {
  const box = state.boxes[state.selected];
  if (!box?.predictionId) return setStatus('select a predicted box to see similar objects', 'bad');
  if (!similar) {
    const drawer = document.createElement('section');
    drawer.className = 'similar-drawer';
    drawer.setAttribute('aria-label', 'similar objects');
    document.body.append(drawer);
    similar = { drawer, view: mountSimilarObjects(drawer) };
  }
  similar.view.search([box.predictionId], box.className);
}

function closeSimilar() {
  similar?.drawer.remove();
  similar = null;
}

// The classes of the model that routed the task (from its metadata), plus any a prediction names.
function classesOf(payload) {
  const names = new Set(payload.classNames);
  for (const p of payload.predictions) names.add(p.className);
  return [...names];
}

function snapshot() {
  state.history.push(JSON.stringify({ boxes: state.boxes, selected: state.selected }));
  if (state.history.length > 100) state.history.shift();
  state.dirty = true;
}

function undo() {
  const last = state.history.pop();
  if (!last) return setStatus('nothing to undo');
  Object.assign(state, JSON.parse(last));
  render();
}

function setStatus(text, kind = '') {
  const el = document.getElementById('status');
  if (el) {
    el.textContent = text;
    el.style.color = kind === 'bad' ? 'var(--bad)' : kind === 'good' ? 'var(--good)' : '';
  }
}

async function next() {
  clearInterval(leaseTimer);
  closeSimilar();
  root.innerHTML = '<div class="empty">Loading the next task…</div>';
  let payload;
  try {
    payload = await api('/v1/tasks/claim', { method: 'POST', body: {} });
  } catch (err) {
    // Paused for low accuracy on check frames: say so plainly, and let the reviewer try again
    // once a lead has resumed them.
    if (err.problem?.code === 'reviewer_paused') {
      root.innerHTML = `<div class="empty" id="paused"><h2>You are paused from the review queue</h2><p>${escapeHtml(err.message)}</p>
        <p><button id="paused-retry">Check again</button></p></div>`;
      root.querySelector('#paused-retry').addEventListener('click', next);
      return;
    }
    root.innerHTML = `<div class="empty">Could not claim a task: ${escapeHtml(err.message)}</div>`;
    return;
  }
  if (!payload) {
    root.innerHTML = '<div class="empty">The queue is empty. Checking again in 5 seconds…</div>';
    setTimeout(next, 5000);
    return;
  }
  const { frame, predictions, task } = payload;
  const toPx = (p) => ({ x1: p.x1 * frame.width, y1: p.y1 * frame.height, x2: p.x2 * frame.width, y2: p.y2 * frame.height });
  const boxes = predictions
    .filter((p) => p.underReview || p.score >= SHOW_SCORE)
    .map((p) => ({ className: p.className, score: p.score, ...toPx(p), predictionId: p.id, underReview: p.underReview }));
  state = {
    task,
    frame,
    predictions,
    boxes,
    selected: boxes.findIndex((b) => b.underReview),
    history: [],
    mode: 'select',
    classes: classesOf(payload),
    dirty: false,
    image: await imageUrl(frame.imageUrl),
    claimedAt: performance.now(),
  };
  render();
  leaseTimer = setInterval(renderLease, 1000);
  document.body.dataset.taskId = task.id; // lets tests and screen readers find the current task
}

function renderLease() {
  const el = document.getElementById('lease');
  if (!el || !state?.task.leaseExpiresAt) return;
  const left = Math.max(0, Math.round((new Date(state.task.leaseExpiresAt).getTime() - Date.now()) / 1000));
  el.textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;
  el.classList.toggle('low', left < 60);
  if (left === 0) setStatus('Your lease expired; press n to claim again.', 'bad');
}

/** The scores that routed the task. A random sample was drawn whatever its value, so it shows
 * no bar; a novel frame's uncertainty is a draw (its model sees nothing in it to be unsure of). */
function whyThisFrame(task) {
  const s = task.selection;
  if (task.reason === 'random') return `random sample (value ${s.value.toFixed(4)})`;
  const value = `${task.reason === 'novel' ? 'drawn uncertainty' : 'uncertainty'} ${s.uncertainty.toFixed(2)} × novelty ${s.novelty.toFixed(3)} = ${s.value.toFixed(4)}`;
  if (s.threshold === null) return `${value} (sampled while the stream warms up)`;
  return `${value} ≥ bar ${s.threshold.toFixed(4)}`;
}

function render() {
  const { task, frame, boxes, selected, classes } = state;
  const band = task.band ? `[${task.band.low}, ${task.band.high})` : '—';
  root.innerHTML = `
  <div class="review">
    <div class="stage mode-${state.mode}" id="stage">
      <div class="frame">
        <img id="frame" src="${state.image}" alt="frame ${escapeHtml(frame.id)}" draggable="false">
        <svg id="overlay" viewBox="0 0 ${frame.width} ${frame.height}" preserveAspectRatio="none"></svg>
      </div>
    </div>
    <aside class="side">
      <h2>Task</h2>
      <dl class="kv">
        <dt>lease</dt><dd><span class="lease" id="lease">—</span></dd>
        <dt>stream</dt><dd>${escapeHtml(frame.streamId)}</dd>
        <dt>camera</dt><dd>${escapeHtml(frame.cameraId)}</dd>
        <dt>captured</dt><dd>${escapeHtml(new Date(frame.capturedAt).toLocaleString())}</dd>
        <dt>routed by</dt><dd>${escapeHtml(task.reason)} · policy v${task.policyVersion} · band ${band}</dd>
        ${task.selection ? `<dt>why this frame</dt><dd class="selection">${whyThisFrame(task)}</dd>` : ''}
        <dt>under review</dt><dd>${task.className ? `${escapeHtml(task.className)} ${(task.score ?? 0).toFixed(2)}` : task.reason === 'novel' ? 'whole frame (unlike anything the model knows)' : 'whole frame (random sample)'}</dd>
        <dt>model</dt><dd>${escapeHtml(task.modelVersion)}</dd>
      </dl>
      <h2>Boxes <span class="mode" id="mode">${state.mode}</span></h2>
      <ol class="boxes" id="boxes">${boxes.map((b, i) => `<li data-i="${i}" class="${i === selected ? 'selected' : ''}">${escapeHtml(b.className)}${b.score !== undefined ? ` ${b.score.toFixed(2)}` : ' (drawn)'}${b.underReview ? ' ◀' : ''}</li>`).join('')}</ol>
      <h2>Keys</h2>
      <div class="keys">
        <kbd>a</kbd><span>accept (store the boxes shown)</span>
        <kbd>r</kbd><span>reject the prediction under review</span>
        <kbd>Enter</kbd><span>submit edits (or accept)</span>
        <kbd>n</kbd><span>skip: give the task back</span>
        <span><kbd>1</kbd>–<kbd>${classes.length}</kbd></span><span>class of the selected box: ${classes.map((c, i) => `${i + 1} ${escapeHtml(c)}`).join(', ')}</span>
        <kbd>d</kbd><span>draw a missing box (drag)</span>
        <kbd>b</kbd><span>box assist: drag a rough region or click an object</span>
        <kbd>o</kbd><span>similar objects of the selected box (panel; o or Esc closes)</span>
        <kbd>Esc</kbd><span>select / move mode</span>
        <kbd>Tab</kbd><span>select the next box</span>
        <kbd>Del</kbd><span>delete the selected box</span>
        <kbd>z</kbd><span>undo</span>
      </div>
      <div class="status" id="status"></div>
      <p><button id="signout">Sign out</button></p>
    </aside>
  </div>`;
  fitFrame();
  drawOverlay();
  renderLease();
  root.querySelector('#boxes').addEventListener('click', (e) => {
    const li = e.target.closest('li');
    if (li) {
      state.selected = Number(li.dataset.i);
      render();
    }
  });
  root.querySelector('#signout').addEventListener('click', () => {
    token.clear();
    location.reload();
  });
  attachPointer();
}

/** Shows the frame as large as the stage allows (small camera frames are scaled up). */
function fitFrame() {
  const stage = document.getElementById('stage');
  const img = document.getElementById('frame');
  if (!stage || !img) return;
  const r = stage.getBoundingClientRect();
  const s = Math.min((r.width - 16) / state.frame.width, (r.height - 16) / state.frame.height);
  img.style.width = `${Math.floor(state.frame.width * s)}px`;
  img.style.height = `${Math.floor(state.frame.height * s)}px`;
}
window.addEventListener('resize', () => state && fitFrame());

function drawOverlay() {
  const svg = document.getElementById('overlay');
  const ns = 'http://www.w3.org/2000/svg';
  svg.innerHTML = '';
  const handle = Math.max(4, state.frame.width / 90);
  state.boxes.forEach((b, i) => {
    const colour = CLASS_COLOURS[Math.max(0, state.classes.indexOf(b.className)) % CLASS_COLOURS.length];
    const g = document.createElementNS(ns, 'g');
    g.setAttribute('class', `box${i === state.selected ? ' selected' : ''}${b.underReview ? ' review' : ''}`);
    g.dataset.i = String(i);
    const rect = document.createElementNS(ns, 'rect');
    rect.setAttribute('class', 'body');
    rect.setAttribute('x', b.x1);
    rect.setAttribute('y', b.y1);
    rect.setAttribute('width', Math.max(1, b.x2 - b.x1));
    rect.setAttribute('height', Math.max(1, b.y2 - b.y1));
    rect.setAttribute('stroke', colour);
    rect.dataset.part = 'body';
    g.appendChild(rect);
    const label = document.createElementNS(ns, 'text');
    label.setAttribute('x', b.x1 + 2);
    label.setAttribute('y', Math.max(10, b.y1 - 3));
    label.textContent = `${b.className}${b.score !== undefined ? ` ${b.score.toFixed(2)}` : ''}`;
    g.appendChild(label);
    if (i === state.selected) {
      for (const [corner, x, y] of [
        ['nw', b.x1, b.y1],
        ['ne', b.x2, b.y1],
        ['sw', b.x1, b.y2],
        ['se', b.x2, b.y2],
      ]) {
        const h = document.createElementNS(ns, 'rect');
        h.setAttribute('class', 'handle');
        h.setAttribute('x', x - handle / 2);
        h.setAttribute('y', y - handle / 2);
        h.setAttribute('width', handle);
        h.setAttribute('height', handle);
        h.dataset.part = corner;
        h.dataset.corner = corner;
        g.appendChild(h);
      }
    }
    svg.appendChild(g);
  });
}

function framePoint(svg, e) {
  const r = svg.getBoundingClientRect();
  return { x: ((e.clientX - r.left) / r.width) * state.frame.width, y: ((e.clientY - r.top) / r.height) * state.frame.height };
}

function clampBox(b) {
  const W = state.frame.width,
    H = state.frame.height;
  const x1 = Math.max(0, Math.min(b.x1, b.x2)),
    x2 = Math.min(W, Math.max(b.x1, b.x2));
  const y1 = Math.max(0, Math.min(b.y1, b.y2)),
    y2 = Math.min(H, Math.max(b.y1, b.y2));
  return { ...b, x1, y1, x2, y2 };
}

function attachPointer() {
  const svg = document.getElementById('overlay');
  let drag = null;
  svg.addEventListener('pointerdown', (e) => {
    const p = framePoint(svg, e);
    const part = e.target.dataset?.part;
    const g = e.target.closest?.('g.box');
    if (state.mode === 'select' && g) {
      const i = Number(g.dataset.i);
      snapshot();
      state.selected = i;
      drag = { kind: part === 'body' ? 'move' : 'resize', corner: part, start: p, orig: { ...state.boxes[i] } };
    } else if (state.mode === 'draw' || state.mode === 'assist') {
      drag = { kind: state.mode, start: p, current: p };
    } else {
      state.selected = -1;
    }
    svg.setPointerCapture(e.pointerId);
    // Only the overlay's children are redrawn during a drag: replacing the svg itself would
    // drop the pointer capture.
    drawOverlay();
  });
  svg.addEventListener('pointermove', (e) => {
    if (!drag) return;
    const p = framePoint(svg, e);
    const overlay = document.getElementById('overlay');
    if (drag.kind === 'move') {
      const dx = p.x - drag.start.x,
        dy = p.y - drag.start.y;
      state.boxes[state.selected] = clampBox({ ...drag.orig, x1: drag.orig.x1 + dx, x2: drag.orig.x2 + dx, y1: drag.orig.y1 + dy, y2: drag.orig.y2 + dy });
      drawOverlay();
    } else if (drag.kind === 'resize') {
      const b = { ...drag.orig };
      if (drag.corner.includes('w')) b.x1 = p.x;
      else b.x2 = p.x;
      if (drag.corner.includes('n')) b.y1 = p.y;
      else b.y2 = p.y;
      state.boxes[state.selected] = { ...b };
      drawOverlay();
    } else {
      drag.current = p;
      drawOverlay();
      const ns = 'http://www.w3.org/2000/svg';
      const r = document.createElementNS(ns, 'rect');
      r.setAttribute('class', 'region');
      r.setAttribute('x', Math.min(drag.start.x, p.x));
      r.setAttribute('y', Math.min(drag.start.y, p.y));
      r.setAttribute('width', Math.abs(p.x - drag.start.x));
      r.setAttribute('height', Math.abs(p.y - drag.start.y));
      overlay.appendChild(r);
    }
  });
  svg.addEventListener('pointerup', async (e) => {
    if (!drag) return;
    const d = drag;
    drag = null;
    const p = framePoint(svg, e);
    if (d.kind === 'move' || d.kind === 'resize') {
      state.boxes[state.selected] = { ...clampBox(state.boxes[state.selected]), score: undefined, edited: true };
      render();
      return;
    }
    let region = clampBox({ x1: d.start.x, y1: d.start.y, x2: p.x, y2: p.y });
    const tiny = region.x2 - region.x1 < 4 || region.y2 - region.y1 < 4;
    if (d.kind === 'draw') {
      if (tiny) return render();
      snapshot();
      state.boxes.push({ ...region, className: state.classes[0], score: undefined });
      state.selected = state.boxes.length - 1;
      return render();
    }
    // Box assist: a click means "the object here"; a drag gives the rough region.
    if (tiny) region = clampBox({ x1: p.x - CLICK_REGION / 2, y1: p.y - CLICK_REGION / 2, x2: p.x + CLICK_REGION / 2, y2: p.y + CLICK_REGION / 2 });
    setStatus('asking box assist…');
    try {
      const started = performance.now();
      const res = await api('/v1/box-predictions', {
        method: 'POST',
        body: { frameId: state.frame.id, region: { x1: region.x1, y1: region.y1, x2: region.x2, y2: region.y2 } },
      });
      snapshot();
      const selectedClass = state.boxes[state.selected]?.className ?? state.classes[0];
      state.boxes.push({ ...res.box, className: selectedClass, score: undefined, assisted: true });
      state.selected = state.boxes.length - 1;
      render();
      setStatus(
        `box assist: ${Math.round(performance.now() - started)} ms, confidence ${res.score.toFixed(2)}; press 1-${state.classes.length} to set its class`,
        'good',
      );
    } catch (err) {
      render();
      setStatus(`box assist failed: ${err.message}`, 'bad');
    }
  });
}

async function submit(decision) {
  const { frame } = state;
  const boxes = state.boxes
    .map((b) => ({
      className: b.className,
      x1: +(b.x1 / frame.width).toFixed(6),
      y1: +(b.y1 / frame.height).toFixed(6),
      x2: +(b.x2 / frame.width).toFixed(6),
      y2: +(b.y2 / frame.height).toFixed(6),
    }))
    .filter((b) => b.x2 > b.x1 && b.y2 > b.y1);
  const body = decision === 'reject' ? { decision } : { decision, boxes };
  setStatus('saving…');
  try {
    await api(`/v1/tasks/${state.task.id}/submit`, { method: 'POST', body });
    const took = Math.round(performance.now() - state.claimedAt);
    await next();
    setStatus(`saved (${decision}) in ${took} ms`, 'good');
  } catch (err) {
    setStatus(err instanceof ApiError ? `not saved: ${err.message}` : String(err), 'bad');
  }
}

document.addEventListener('keydown', async (e) => {
  if (!state || e.target.closest?.('input, textarea, select') || e.metaKey || e.ctrlKey || e.altKey) return;
  const key = e.key;
  if (similar && (key === 'Escape' || key === 'o')) return closeSimilar();
  if (similar?.view.handleKey(e)) return;
  if (/^[1-9]$/.test(key)) {
    const cls = state.classes[Number(key) - 1];
    if (cls && state.selected >= 0) {
      snapshot();
      state.boxes[state.selected] = { ...state.boxes[state.selected], className: cls, score: undefined, edited: true };
      render();
    }
    return;
  }
  switch (key) {
    case 'a':
      return submit('accept');
    case 'r':
      return submit('reject');
    case 'Enter':
      e.preventDefault();
      return submit(state.dirty ? 'correct' : 'accept');
    case 'n':
      try {
        await api(`/v1/tasks/${state.task.id}/release`, { method: 'POST' });
      } catch {
        /* an expired lease is fine to skip */
      }
      return next();
    case 'd':
      state.mode = 'draw';
      return render();
    case 'b':
      state.mode = 'assist';
      return render();
    case 'o':
      return openSimilar();
    case 'Escape':
      state.mode = 'select';
      return render();
    case 'z':
      return undo();
    case 'Tab':
      e.preventDefault();
      state.selected = state.boxes.length ? (state.selected + 1) % state.boxes.length : -1;
      return render();
    case 'Delete':
    case 'Backspace':
    case 'x':
      if (state.selected >= 0) {
        snapshot();
        state.boxes.splice(state.selected, 1);
        state.selected = -1;
        render();
      }
      return;
  }
});

const user = await signedInUser();
const start = (u) => {
  who.textContent = `${u.name} (${u.role})`;
  next();
};
if (user) start(user);
else renderSignIn(root, start, 'reviewers get theirs from a lead; `make up` prints one');
