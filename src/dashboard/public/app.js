// The dashboard's entry point: polls `/v1/status` and `/v1/activity` every second, keeps going
// while the gateway is unreachable (with a banner), and wires the request form and the key form.
import { apiKey, lastContactAt, onLinkChange, onUnauthorized, request, setApiKey, Unreachable } from './api.js';
import { createActivityPanel } from './activity.js';
import { formatTime, setBadge } from './dom.js';
import { createSendPanel, onTicketChange } from './send.js';
import { createServicesPanel } from './services.js';

const POLL_MS = 1000;
const HIDDEN_POLL_MS = 5000;
const $ = (id) => document.getElementById(id);

const services = createServicesPanel($('services'));
const activity = createActivityPanel($('activity'));
createSendPanel({
  opForm: $('op-form'),
  exprForm: $('expr-form'),
  status: $('ticket-status'),
  result: $('result'),
  detail: $('answer-detail'),
  list: $('tickets'),
  pushStatus: $('push-state'),
});
onTicketChange(() => activity.refresh());

// --- the link to the gateway -------------------------------------------------------------------
// The banner follows the link state alone, which every request updates in the order the answers
// arrive: a poll whose two requests disagree (one refused, one answered while the gateway comes
// back) must not leave the banner up once the link is live.
const banner = $('offline');
onLinkChange((up) => {
  setBadge($('link-state'), up ? 'up' : 'down', up ? 'live' : 'unreachable');
  document.body.classList.toggle('is-offline', !up);
  if (up) banner.hidden = true;
  else showOffline();
});

function showOffline() {
  const last = lastContactAt();
  banner.textContent = `Cannot reach the gateway at ${location.host}. Retrying every second` +
    (last ? `; the figures below are from ${formatTime(last)}.` : '.');
  banner.hidden = false;
  services.stale();
  setBadge($('queue-backend'), 'neutral', 'unknown');
}

// --- the API key, when the gateway asks for one ------------------------------------------------
const keyForm = $('key-form');
let askedForKey = false;
onUnauthorized(() => {
  if (!keyForm.hidden) return;
  if (apiKey()) $('key-note').textContent = 'The gateway did not accept the API key of this tab: enter another one.';
  keyForm.hidden = false;
  // Move focus only the first time, never again on every poll.
  if (!askedForKey) $('api-key').focus();
  askedForKey = true;
});
keyForm.addEventListener('submit', (event) => {
  event.preventDefault();
  setApiKey($('api-key').value.trim());
  $('api-key').value = '';
  keyForm.hidden = true;
  poll();
});
if (apiKey()) $('api-key').setAttribute('placeholder', 'a key is set for this tab');

// --- polling -----------------------------------------------------------------------------------
let timer;

async function refreshStatus() {
  const reply = await request('/v1/status', { timeoutMs: 3000 });
  if (reply.status !== 200) return;
  const status = reply.body;
  services.update(status);
  $('version').textContent = status.version ?? '?';
  $('uptime').textContent = formatUptime(status.uptimeS);
  const queue = status.queue ?? {};
  setBadge($('queue-backend'), queue.ok ? 'up' : 'down', `${queue.backend ?? '?'} ${queue.ok ? 'ok' : 'unavailable'}`);
  // The gateway's outbox: requests accepted while Redis could not take them, waiting to be forwarded.
  const outbox = queue.outbox;
  $('outbox-row').hidden = !outbox;
  if (outbox) {
    const tone = outbox.depth === 0 ? 'up' : outbox.depth >= outbox.max ? 'down' : 'info';
    setBadge($('outbox'), tone, outbox.depth === 0 ? 'empty' : `${outbox.depth} waiting, oldest ${Math.round(outbox.oldestAgeMs / 1000)} s`);
  }
}

async function refreshActivity() {
  const reply = await request('/v1/activity', { timeoutMs: 3000 });
  if (reply.status === 200) activity.update(reply.body);
}

async function poll() {
  clearTimeout(timer);
  const started = Date.now();
  const outcomes = await Promise.allSettled([refreshStatus(), refreshActivity()]);
  for (const o of outcomes) if (o.status === 'rejected' && !(o.reason instanceof Unreachable)) console.error(o.reason);
  const every = document.hidden ? HIDDEN_POLL_MS : POLL_MS;
  timer = setTimeout(poll, Math.max(0, every - (Date.now() - started)));
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden) poll();
});

function formatUptime(seconds) {
  if (typeof seconds !== 'number') return '?';
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}

poll();
