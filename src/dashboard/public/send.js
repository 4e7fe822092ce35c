// The request form: sends an operation or an expression, shows the answer or the ticket, and
// watches the tickets it was given until each one is done or failed: pushed by the gateway's
// event stream while it is open, polled otherwise.
import { describeError, request, sleep, Unreachable } from './api.js';
import { el, formatNumber, setBadge } from './dom.js';
import { createPushChannel } from './events.js';

const SYMBOL = { add: '+', subtract: '−', multiply: '×', divide: '÷' };
const LONG_POLL_S = 5;
const SHOWN = 8;
/**
 * While results are pushed, a ticket is still looked up now and then, in case its result went
 * to another channel of this client (`calcmesh results`, say); one completed this long ago
 * without being pushed here was.
 */
const PUSH_CHECK_MS = 5000;
const PUSH_GRACE_MS = 10_000;

/** Tickets this page was given, by id: { id, label, status, result?, error?, sentAt, queuedMs? }. */
const tickets = new Map();
const listeners = new Set();

/** What this page knows of a ticket it submitted itself, or undefined. */
export const ticketInfo = (id) => (id ? tickets.get(id) : undefined);
export const onTicketChange = (fn) => listeners.add(fn);

export function createSendPanel({ opForm, exprForm, status, result, detail, list, pushStatus }) {
  pushState = pushStatus;
  let latest; // the submission the answer panel shows: a ticket id, or a symbol for one answered at once

  const show = (tone, badge, value, text) => {
    setBadge(status, tone, badge);
    result.textContent = value;
    result.classList.toggle('pending', value === '…' || value === '—');
    detail.textContent = text;
  };

  async function submit(label, send) {
    const mine = Symbol(label);
    latest = mine;
    show('neutral', 'sending', '…', `${label}: sending…`);
    let reply;
    try {
      reply = await send();
    } catch (error) {
      if (latest !== mine) return;
      if (error instanceof Unreachable) return show('down', 'not sent', '—', `${label}: the gateway could not be reached. Try again when the banner is gone.`);
      throw error;
    }
    const { status: code, body } = reply;
    if (code === 202 && body?.id) {
      tickets.set(body.id, { id: body.id, label, status: 'queued', sentAt: Date.now() });
      changed();
      watch();
      if (latest !== mine) return;
      latest = body.id;
      return show('info', 'queued', '…', `${label}: the service is unavailable, so the request was stored durably as ticket ${body.id}. Watching it resolve…`);
    }
    if (latest !== mine) return;
    if (code === 200) return show('up', 'done', formatNumber(body.result), `${label} = ${formatNumber(body.result)}, answered directly (id ${body.id}).`);
    show('down', 'error', '—', `${label}: ${describeError(reply)}`);
  }

  opForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData(opForm);
    const op = String(data.get('op'));
    const a = String(data.get('num1')).trim();
    const b = String(data.get('num2')).trim();
    submit(`${a || '?'} ${SYMBOL[op] ?? op} ${b || '?'}`, () =>
      request(`/${encodeURIComponent(op)}/${encodeURIComponent(a)}/${encodeURIComponent(b)}`));
  });

  exprForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const expression = String(new FormData(exprForm).get('expression'));
    submit(expression.trim() || '(empty expression)', () => request('/v1/evaluate', { method: 'POST', json: { expression } }));
  });

  onTicketChange((ticket) => {
    if (ticket.id !== latest) return;
    if (ticket.status === 'done') {
      show('up', 'done', formatNumber(ticket.result), `${ticket.label} = ${formatNumber(ticket.result)}: ticket ${ticket.id} was computed after ${seconds(ticket)} in the queue.`);
    } else if (ticket.status === 'failed') {
      show('down', 'failed', '—', `${ticket.label}: ticket ${ticket.id} failed: ${ticket.error?.code ?? ''} ${ticket.error?.message ?? ''}`.trim());
    }
  });
  onTicketChange(() => renderTickets(list));
  onTicketChange(renderPushState);
}

function changed(ticket) {
  for (const fn of listeners) fn(ticket ?? {});
}

/** Records a ticket's outcome (from the stream or a lookup) with the gateway's own timestamps. */
function resolve(ticket, body, via) {
  if (ticket.status !== 'queued') return;
  const queuedMs = Date.parse(body.completedAt) - Date.parse(body.createdAt);
  Object.assign(ticket, { status: body.status, result: body.result, error: body.error, via, queuedMs: Number.isFinite(queuedMs) ? queuedMs : undefined });
  changed(ticket);
}

const push = createPushChannel({
  onResult(body) {
    const ticket = tickets.get(body?.id);
    if (ticket && (body.status === 'done' || body.status === 'failed')) resolve(ticket, body, 'push');
    if (pendingTickets().length === 0) push.want(false);
  },
  onLive() {
    renderPushState();
  },
});

let pushState;
function renderPushState() {
  if (!pushState) return;
  const waiting = pendingTickets().length > 0;
  pushState.textContent = !waiting ? '' : push.live() ? 'Results are pushed to this page as they complete.' : 'Watching for results…';
  pushState.dataset.live = String(push.live());
}

let watching = false;

/**
 * One watcher for all tickets, so that it holds at most one connection: the browser allows only
 * six per origin, and the status polling must never wait behind long polls. It long-polls one
 * pending ticket, then checks the others without waiting, rotating which one it waits on.
 */
async function watch() {
  push.want(true);
  if (watching) return;
  watching = true;
  try {
    let turn = 0;
    for (let pending = pendingTickets(); pending.length > 0; pending = pendingTickets(), turn++) {
      if (push.live()) {
        await sleep(PUSH_CHECK_MS);
        for (const ticket of pendingTickets()) if (push.live()) await check(ticket, 0);
        continue;
      }
      const first = pending[turn % pending.length];
      const ok = await check(first, LONG_POLL_S);
      for (const ticket of pending) if (ticket !== first && ok) await check(ticket, 0);
      if (!ok) await sleep(1000);
    }
  } finally {
    watching = false;
    push.want(false);
  }
}

const pendingTickets = () => [...tickets.values()].filter((t) => t.status === 'queued');

/**
 * Refreshes one ticket; false when the gateway could not tell (unreachable or erroring). While the
 * push stream is live when the answer arrives (a long poll begun before it opened, say), a
 * completion younger than PUSH_GRACE_MS is left to the stream.
 */
async function check(ticket, waitS) {
  let reply;
  try {
    reply = await request(`/v1/results/${encodeURIComponent(ticket.id)}?wait=${waitS}`, { timeoutMs: (waitS + 5) * 1000 });
  } catch (error) {
    if (error instanceof Unreachable) return false;
    throw error;
  }
  if (reply.status === 404) {
    // Expired, or the gateway now sees another client (API key changed): stop watching it.
    Object.assign(ticket, { status: 'failed', error: { code: 'NOT_FOUND', message: 'the gateway no longer knows this ticket' } });
    changed(ticket);
    return true;
  }
  if (reply.status !== 200) return false;
  const body = reply.body;
  const graceMs = push.live() ? PUSH_GRACE_MS : 0;
  if ((body.status === 'done' || body.status === 'failed') && !(Date.now() - Date.parse(body.completedAt) < graceMs)) {
    resolve(ticket, body, 'poll');
  }
  return true;
}

function renderTickets(list) {
  const newest = [...tickets.values()].reverse().slice(0, SHOWN);
  if (newest.length === 0) return;
  list.replaceChildren(...newest.map((ticket) => {
    const tone = ticket.status === 'done' ? 'up' : ticket.status === 'failed' ? 'down' : 'info';
    const outcome = ticket.status === 'done' ? `= ${formatNumber(ticket.result)}`
      : ticket.status === 'failed' ? (ticket.error?.code ?? 'failed') : 'waiting for the service';
    return el('li', { class: 'ticket', 'data-testid': `ticket-${ticket.id}`, 'data-status': ticket.status, 'data-via': ticket.via ?? '' },
      el('span', { class: `badge ${tone}` }, ticket.status),
      el('span', { class: 'ticket-label' }, ticket.label),
      el('span', { class: 'ticket-outcome' }, outcome),
      el('code', { class: 'ticket-id', title: ticket.id }, ticket.id.slice(0, 8)));
  }));
}

const seconds = (ticket) => `${((ticket.queuedMs ?? Date.now() - ticket.sentAt) / 1000).toFixed(1)} s`;
