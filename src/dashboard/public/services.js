// The services panel: one card per operation with its replicas (health, breaker) and its queue
// (depth, oldest age, in flight, dead letters) with a sparkline of the depth over the last minute.
import { el, formatAge, setBadge } from './dom.js';
import { createSparkline } from './sparkline.js';

const HISTORY = 60;
const OPS = ['add', 'subtract', 'multiply', 'divide', 'evaluate'];

const HEALTH_TEXT = { SERVING: 'serving', NOT_SERVING: 'not serving', UNREACHABLE: 'unreachable', UNIMPLEMENTED: 'no health service' };
const BREAKER_TONE = { closed: 'neutral', open: 'down', 'half-open': 'warn' };

export function createServicesPanel(root) {
  const cards = new Map(OPS.map((op) => [op, createCard(op)]));
  root.replaceChildren(...[...cards.values()].map((card) => card.element));

  return {
    /** Draws one `/v1/status` document. */
    update(status) {
      for (const [op, card] of cards) card.update(status.services?.[op]);
    },
    /** The gateway is unreachable: keep the last picture, mark it stale, and leave a gap in the history. */
    stale() {
      for (const card of cards.values()) card.stale();
    },
  };
}

function createCard(op) {
  const element = el('article', { class: 'svc card', 'data-testid': `service-${op}`, 'aria-labelledby': `svc-${op}-title` });
  const title = el('h3', { id: `svc-${op}-title` }, op);
  const state = el('span', { class: 'badge neutral', 'data-testid': `service-state-${op}` }, 'unknown');
  const replicas = el('ul', { class: 'replicas', 'aria-label': `${op} replicas` });
  const depth = el('dd', { 'data-testid': `queue-depth-${op}` }, '–');
  const age = el('dd', { 'data-testid': `queue-age-${op}` }, '–');
  const inFlight = el('span', { class: 'count', 'data-testid': `queue-inflight-${op}` }, '–');
  const dead = el('span', { class: 'count', 'data-testid': `queue-dead-${op}` }, '–');
  // A queue nobody drains (its service runs on another queue, or not at all): said in words.
  const stall = el('p', { class: 'svc-stall', role: 'status', 'data-testid': `queue-stall-${op}`, hidden: '' });
  const history = [];
  const spark = createSparkline(HISTORY, (samples) => {
    const known = samples.filter((v) => typeof v === 'number');
    return known.length === 0
      ? `${op} queue depth: no samples yet`
      : `${op} queue depth over the last ${samples.length} seconds: now ${known.at(-1)}, highest ${Math.max(...known)}`;
  });
  spark.element.setAttribute('data-testid', `queue-spark-${op}`);

  element.append(
    el('header', { class: 'svc-head' }, title, state),
    replicas,
    el('div', { class: 'svc-queue' },
      el('dl', { class: 'queue' },
        el('div', {}, el('dt', {}, 'queued'), depth),
        el('div', {}, el('dt', {}, 'oldest'), age)),
      el('div', { class: 'spark-wrap' }, spark.element, el('span', { class: 'spark-caption muted', 'aria-hidden': 'true' }, 'last 60 s'))),
    stall,
    el('p', { class: 'svc-foot muted' }, inFlight, ' in flight · ', dead, ' dead letters'),
  );

  let lastReplicas = '';
  function push(sample) {
    history.push(sample);
    if (history.length > HISTORY) history.shift();
    spark.update(history);
  }

  return {
    element,
    update(service) {
      element.classList.remove('is-stale');
      const list = service?.replicas ?? [];
      // One state per card: a replica whose health still says SERVING but whose circuit is open
      // (hung: it takes connections and never answers) is not up, whatever its health stream says.
      const serving = list.filter(isAnswering).length;
      const hung = list.filter((r) => reportsServing(r) && r.breaker === 'open').length;
      const stalled = service?.queue?.stalled === true;
      const tone = list.length === 0 ? 'neutral' : serving === 0 ? 'down' : serving < list.length || stalled ? 'warn' : 'up';
      const text = list.length === 0 ? 'unknown'
        : serving === 0 ? (hung > 0 ? 'not answering — requests queued' : 'down — requests queued')
        : stalled ? 'up — queue not draining'
        : serving < list.length ? `up ${serving}/${list.length}` : 'up';
      setBadge(state, tone, text);
      element.dataset.state = tone;

      const signature = JSON.stringify(list);
      if (signature !== lastReplicas) {
        lastReplicas = signature;
        replicas.replaceChildren(...list.map(replicaRow));
      }

      const queue = service?.queue;
      depth.textContent = queue ? String(queue.depth) : 'n/a';
      depth.classList.toggle('hot', Boolean(queue && queue.depth > 0));
      age.textContent = queue ? formatAge(queue.oldestAgeMs) : 'n/a';
      inFlight.textContent = queue ? String(queue.inFlight) : 'n/a';
      dead.textContent = queue ? String(queue.deadLetters) : 'n/a';
      dead.classList.toggle('bad', Boolean(queue && queue.deadLetters > 0));
      stall.hidden = !stalled;
      stall.textContent = stalled ? `Not draining: ${queue.stallReason ?? 'tasks wait longer than a lease and nothing claims them'}` : '';
      push(queue ? queue.depth : null);
    },
    stale() {
      element.classList.add('is-stale');
      push(null);
    },
  };
}

/** Its health says SERVING, or it serves no health at all (a foreign service): then its calls judge it. */
const reportsServing = (replica) => replica.health === 'SERVING' || replica.health === 'UNIMPLEMENTED';

/** A replica takes calls: it reports serving and its circuit is not open (closed, for one without health). */
const isAnswering = (replica) => replica.health === 'SERVING'
  ? replica.breaker !== 'open'
  : replica.health === 'UNIMPLEMENTED' && replica.breaker === 'closed';

function replicaRow(replica) {
  const healthy = isAnswering(replica);
  const row = el('li', { class: 'replica' },
    el('code', { class: 'target' }, replica.target),
    el('span', { class: `badge ${healthy ? 'up' : 'down'}` }, healthy || !reportsServing(replica)
      ? HEALTH_TEXT[replica.health] ?? String(replica.health).toLowerCase()
      : 'not answering'));
  if (replica.breaker) {
    row.append(el('span', { class: `badge ${BREAKER_TONE[replica.breaker] ?? 'neutral'}`, title: 'circuit breaker' }, `breaker ${replica.breaker}`));
  }
  return row;
}
