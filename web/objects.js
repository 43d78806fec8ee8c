// Objects: search stored detections by example across streams and cameras, mark examples as
// (not) of a class, and decide the label proposals a mark makes (web/similar-objects.js).
// `?object=<id>&class=<name>` starts from one object.
import { escapeHtml, renderSignIn, signedInUser, token } from './api.js';
import { mountSimilarObjects } from './similar-objects.js';

const root = document.getElementById('root');
const who = document.getElementById('who');

async function start() {
  const user = await signedInUser();
  if (!user) return renderSignIn(root, start);
  who.innerHTML = `${escapeHtml(user.name)} · ${escapeHtml(user.role)} <button id="signout-top">sign out</button>`;
  who.querySelector('#signout-top').addEventListener('click', () => {
    token.clear();
    location.reload();
  });
  root.classList.add('objects');
  const view = mountSimilarObjects(root, { searchForm: true });
  document.addEventListener('keydown', (e) => view.handleKey(e));
  const params = new URLSearchParams(location.search);
  if (params.get('object')) await view.search([params.get('object')], params.get('class') ?? '');
}
start();
