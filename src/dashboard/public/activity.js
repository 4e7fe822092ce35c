// The latest requests the gateway handled (`/v1/activity`), newest first, with the path each took
// and, for tickets this page submitted, how they resolved.
import { el, formatNumber, formatTime } from './dom.js';
import { ticketInfo } from './send.js';

const SHOWN = 15;
const PATH_TONE = { direct: 'up', queued: 'info', rejected: 'down' };
const SYMBOL = { add: '+', subtract: '−', multiply: '×', divide: '÷' };

export function createActivityPanel(list) {
  let lastSignature = '';
  let lastRequests = [];

  function render(requests) {
    lastRequests = requests;
    const rows = requests.slice(0, SHOWN);
    const signature = JSON.stringify(rows.map((r) => [r.requestId, r.at, r.id && ticketInfo(r.id)?.status]));
    if (signature === lastSignature) return;
    lastSignature = signature;
    if (rows.length === 0) {
      list.replaceChildren(el('li', { class: 'muted empty' }, 'No requests yet.'));
      return;
    }
    list.replaceChildren(...rows.map(row));
  }

  return {
    update(body) {
      render(Array.isArray(body?.requests) ? body.requests : []);
    },
    /** A ticket of ours changed: redraw with the rows we have. */
    refresh() {
      lastSignature = '';
      render(lastRequests);
    },
  };
}

function row(entry) {
  return el('li', { class: 'req', 'data-testid': 'activity-row', 'data-path': entry.path },
    el('time', { class: 'req-time muted', datetime: new Date(entry.at).toISOString() }, formatTime(entry.at)),
    el('span', { class: 'req-input' }, label(entry)),
    el('span', { class: `badge ${PATH_TONE[entry.path] ?? 'neutral'}` }, entry.path),
    el('span', { class: 'req-outcome' }, outcome(entry)));
}

function label(entry) {
  if (entry.operation === 'evaluate') return entry.input;
  const [a, b] = String(entry.input).split(' ');
  return SYMBOL[entry.operation] ? `${a} ${SYMBOL[entry.operation]} ${b}` : `${entry.operation} ${entry.input}`;
}

function outcome(entry) {
  if (entry.path === 'direct') return `= ${formatNumber(entry.result)}`;
  if (entry.path === 'rejected') return `${entry.status} ${entry.error ?? ''}`.trim();
  const mine = ticketInfo(entry.id);
  if (!mine) return 'ticket issued';
  if (mine.status === 'done') return `ticket done = ${formatNumber(mine.result)}`;
  if (mine.status === 'failed') return `ticket failed: ${mine.error?.code ?? ''}`.trim();
  return 'ticket waiting';
}
