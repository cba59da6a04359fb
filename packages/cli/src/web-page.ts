/**
 * The classroom page of `callproof demo --web`: one HTML document with its CSS and script inline
 * (no CDN, no other request than the story's JSON from the same loopback server). The script
 * builds every element with `createElement` and `textContent`: the story's text (tool names,
 * arguments, claims, servers' words) can never become markup. The server's CSP allows exactly
 * this style and this script, by hash.
 */
import { createHash } from 'node:crypto'

const STYLE = `
:root { color-scheme: light; --red: #b3261e; --green: #1b6e3a; --ink: #1d1d1f; --dim: #5f6368;
  --line: #dadce0; --bg: #f8f9fa; font-family: system-ui, sans-serif; color: var(--ink); }
body { margin: 0; background: var(--bg); }
header { padding: 16px 24px; background: #fff; border-bottom: 1px solid var(--line); }
h1 { font-size: 20px; margin: 0 0 4px; }
header p { margin: 0; color: var(--dim); font-size: 14px; }
.controls { margin-top: 8px; display: flex; gap: 8px; align-items: center; }
button { font: inherit; font-size: 14px; padding: 4px 12px; border: 1px solid var(--line);
  border-radius: 6px; background: #fff; cursor: pointer; }
main { padding: 16px 24px; max-width: 1400px; }
.heads { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; margin: 0 0 8px 56px;
  font-weight: 600; font-size: 18px; }
.heads .baseline { color: var(--red); }
.heads .callproof { color: var(--green); }
.step { display: grid; grid-template-columns: 40px 1fr; gap: 16px; margin-bottom: 16px; }
.step[hidden] { display: none; }
.num { font-size: 22px; font-weight: 700; color: var(--dim); text-align: right; }
.lesson { font-size: 14px; margin: 0 0 8px; display: grid; grid-template-columns: 120px 1fr;
  gap: 2px 8px; }
.lesson dt { font-weight: 600; }
.lesson dt.baseline { color: var(--red); }
.lesson dt.callproof { color: var(--green); }
.lesson dd { margin: 0; }
.cols { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.col { background: #fff; border: 1px solid var(--line); border-left-width: 6px; border-radius: 6px;
  padding: 8px 12px; min-width: 0; }
.col.breached { border-left-color: var(--red); }
.col.defended { border-left-color: var(--green); }
.who { font-size: 13px; color: var(--dim); }
.action { margin: 2px 0 6px; }
.verdict { font-weight: 700; }
.breached .verdict { color: var(--red); }
.defended .verdict, .fine .verdict { color: var(--green); }
.unexpected { color: var(--red); font-weight: 700; }
.detail { font-size: 13px; color: var(--dim); overflow-wrap: anywhere; margin: 4px 0; }
details { border-top: 1px solid var(--line); font-size: 13px; padding: 4px 0; }
summary { cursor: pointer; font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
h4 { margin: 8px 0 2px; font-size: 12px; text-transform: uppercase; color: var(--dim); }
pre { margin: 0; padding: 6px; background: var(--bg); border-radius: 4px; white-space: pre-wrap;
  overflow-wrap: anywhere; font-size: 12px; max-height: 520px; overflow: auto; }
.status { color: var(--dim); }
`

const SCRIPT = `
'use strict';
const el = (tag, className, text) => {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = String(text);
  return node;
};
const json = (value) => JSON.stringify(value, null, 2);
const MARKS = { breached: 'attack succeeded', defended: 'defended' };

function exchangeView(x) {
  const box = el('details', 'exchange');
  box.append(el('summary', '', x.method + ' ' + (x.call || new URL(x.url).pathname) + '  →  ' + x.decision));
  const section = (title, text) => { box.append(el('h4', '', title), el('pre', '', text)); };
  section('request', x.method + ' ' + x.url + '\\n' +
    Object.entries(x.headers).map(([k, v]) => k + ': ' + v).join('\\n'));
  if (x.body) section('body', x.body);
  const c = x.credentials;
  if (c.token) section('access token (' + (c.scheme || '?') + '), decoded, signature elided',
    c.token.error || json({ header: c.token.header, claims: c.token.claims }));
  else section('access token', 'none');
  if (c.proof) section('DPoP proof, decoded, signature elided',
    c.proof.error || json({ header: c.proof.header, claims: c.proof.claims }));
  else section('DPoP proof', 'none');
  const a = x.answer;
  section('server’s decision', [
    x.decision + ' (HTTP ' + a.status + ')',
    a.challenge ? 'WWW-Authenticate: ' + a.challenge : '',
    a.code ? 'code: ' + a.code : '',
    a.description ? 'reason: ' + a.description : '',
    a.result ? 'result: ' + a.result : '',
  ].filter(Boolean).join('\\n'));
  return box;
}

function outcomeView(mode, o) {
  const col = el('div', 'col ' + mode);
  if (!o) { col.append(el('p', 'detail', 'not played')); return col; }
  col.classList.add(o.security || 'fine');
  col.append(el('div', 'who', o.actor));
  col.append(el('div', 'action', o.action));
  const verdict = el('div', 'verdict', (o.security === 'breached' ? '✗ ' : '✓ ') +
    (MARKS[o.security] ? MARKS[o.security] + ': ' : '') + o.actual);
  col.append(verdict);
  if (!o.ok) col.append(el('div', 'unexpected', 'not as expected: ' + o.expected));
  if (o.detail) col.append(el('div', 'detail', o.detail));
  for (const x of o.exchanges) col.append(exchangeView(x));
  return col;
}

function stepView(s) {
  const section = el('section', 'step');
  section.dataset.step = String(s.step);
  section.dataset.key = s.key;
  section.append(el('div', 'num', s.step));
  const body = el('div', '');
  const lesson = el('dl', 'lesson');
  for (const [term, kind, text] of [['what happens', 'does', s.lesson.does],
    ['the baseline', 'baseline', s.lesson.baseline], ['callproof', 'callproof', s.lesson.callproof]])
    lesson.append(el('dt', kind, term), el('dd', '', text));
  const cols = el('div', 'cols');
  cols.append(outcomeView('baseline', s.baseline), outcomeView('callproof', s.callproof));
  body.append(lesson, cols);
  section.append(body);
  return section;
}

let timer;
function reveal(steps, upTo) {
  steps.forEach((node, i) => { node.hidden = i > upTo; });
  document.getElementById('status').textContent =
    'step ' + Math.min(upTo + 1, steps.length) + ' of ' + steps.length;
  steps[Math.min(upTo, steps.length - 1)].scrollIntoView({ block: 'nearest', behavior: 'smooth' });
}

async function start() {
  const status = document.getElementById('status');
  const response = await fetch('/lesson.json', { headers: { accept: 'application/json' } });
  if (!response.ok) { status.textContent = 'could not load the story (HTTP ' + response.status + ')'; return; }
  const lesson = await response.json();
  const main = document.getElementById('timeline');
  const steps = lesson.steps.map(stepView);
  main.append(...steps);
  status.textContent = steps.length + ' steps; baseline ' + (lesson.ok.baseline ? 'as expected' : 'NOT as expected') +
    ', callproof ' + (lesson.ok.callproof ? 'as expected' : 'NOT as expected');
  let shown = steps.length - 1;
  document.getElementById('play').addEventListener('click', () => {
    clearInterval(timer);
    shown = 0; reveal(steps, shown);
    timer = setInterval(() => { shown++; reveal(steps, shown); if (shown >= steps.length - 1) clearInterval(timer); }, 2500);
  });
  document.getElementById('next').addEventListener('click', () => {
    clearInterval(timer); shown = Math.min(shown + 1, steps.length - 1); reveal(steps, shown);
  });
  document.getElementById('all').addEventListener('click', () => {
    clearInterval(timer); shown = steps.length - 1; steps.forEach((n) => { n.hidden = false; });
    status.textContent = steps.length + ' steps';
  });
  document.body.dataset.ready = 'true';
}
start().catch((error) => { document.getElementById('status').textContent = 'error: ' + error.message; });
`

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`

/** The Content-Security-Policy of the page: this style, this script, JSON from itself; nothing else. */
export const PAGE_CSP = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  "img-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

/** The page's HTML. */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>callproof — the story, step by step</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>callproof: who is calling? — the same story against two servers</h1>
<p>alice’s agent signs in and works; bob uses her session; a second agent rides on what it captured.
Left: the insecure baseline. Right: callproof. Open a request to see its headers, its decoded token
and proof, and the server’s decision.</p>
<div class="controls"><button id="play" type="button">▶ Play</button>
<button id="next" type="button">Next step</button><button id="all" type="button">Show all</button>
<span id="status" class="status">loading…</span></div>
</header>
<main>
<div class="heads"><div class="baseline">insecure baseline</div><div class="callproof">callproof</div></div>
<div id="timeline"></div>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`
