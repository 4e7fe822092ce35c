/**
 * Webhooks (#15): a queued request may name a Callback-Url; when its work completes, one gateway
 * POSTs the ticket there, signed. The queue hands each completion to one gateway at a time and
 * hands it out again after a backoff until it is acknowledged (a failed POST is simply not
 * acknowledged), so delivery is at least once, bounded by maxAttempts, and survives a gateway
 * crash. Receivers dedupe on Calcmesh-Delivery-Id.
 *
 * SSRF: only hosts the operator allowed (CALC_WEBHOOK_ALLOW) are accepted, checked at request
 * time; redirects are never followed, so an allowed host cannot send the POST elsewhere.
 */
import { createHmac } from 'node:crypto';
import { hostname } from 'node:os';
import type { Config } from '../shared/config.js';
import { invalidArgument } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { VERSION } from '../shared/version.js';
import type { DurableQueue, WebhookDelivery } from '../queue/types.js';
import { view } from './routes/results.js';

export type WebhookConfig = Config['webhooks'];

const MAX_URL_CHARS = 2048;
/** Deliveries one gateway POSTs at once. */
const BATCH = 16;
const IDLE_POLL_MS = 250;

/** The callback URL of a request, checked; INVALID_ARGUMENT (400) when webhooks are off or the host is not allowed. */
export function checkCallback(raw: string, config: WebhookConfig | undefined): string {
  if (!config?.secret) throw invalidArgument('webhooks are off on this gateway (no CALC_WEBHOOK_SECRET): Callback-Url cannot be used');
  let url: URL;
  try {
    if (raw.length > MAX_URL_CHARS) throw new Error('too long');
    url = new URL(raw);
  } catch {
    throw invalidArgument(`Callback-Url must be an absolute http(s) URL of at most ${MAX_URL_CHARS} characters`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password) {
    throw invalidArgument('Callback-Url must be an http or https URL without credentials');
  }
  const host = url.hostname.toLowerCase();
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  if (!config.allow.includes(host) && !config.allow.includes(`${host}:${port}`)) {
    throw invalidArgument(`Callback-Url: the host ${JSON.stringify(`${host}:${port}`)} is not in CALC_WEBHOOK_ALLOW`);
  }
  return url.href;
}

/** `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, as the contract fixes it. */
export function signature(secret: string, unixS: number, body: string): string {
  return `t=${unixS},v1=${createHmac('sha256', secret).update(`${unixS}.${body}`).digest('hex')}`;
}

export interface WebhookSender {
  stop(): Promise<void>;
}

export interface WebhookSenderDeps {
  readonly queue: DurableQueue;
  readonly config: WebhookConfig & { readonly secret: string };
  readonly logger: Logger;
  /** Counts each attempt by outcome (`delivered`, `failed`). */
  readonly onAttempt?: (outcome: 'delivered' | 'failed') => void;
}

/** The gateway's webhook loop: claims due deliveries, POSTs them, acknowledges the ones that got a 2xx. */
export function startWebhookSender(deps: WebhookSenderDeps): WebhookSender {
  const { queue, config, logger } = deps;
  const consumer = `gateway-${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const claim = { maxAttempts: config.maxAttempts, retryMs: config.retryMs, attemptMs: config.timeoutMs };
  const stopping = new AbortController();

  async function post(delivery: WebhookDelivery): Promise<void> {
    const ticket = await queue.getTicket(delivery.client, delivery.ticketId);
    if (!ticket) {
      logger.warn({ id: delivery.ticketId }, 'webhook: the ticket expired before it could be delivered; dropped');
      await queue.ackWebhook(delivery);
      return;
    }
    // Replayed from the dead letters since: its next completion brings a delivery of its own.
    if (ticket.status === 'queued') {
      await queue.ackWebhook(delivery);
      return;
    }
    const body = JSON.stringify(view(ticket));
    let status = 0;
    try {
      const response = await fetch(delivery.url, {
        method: 'POST',
        redirect: 'manual',
        headers: {
          'content-type': 'application/json',
          'user-agent': `calcmesh/${VERSION}`,
          'calcmesh-signature': signature(config.secret, Math.floor(Date.now() / 1000), body),
          'calcmesh-delivery-id': delivery.id,
        },
        body,
        signal: AbortSignal.any([AbortSignal.timeout(config.timeoutMs), stopping.signal]),
      });
      status = response.status;
      await response.body?.cancel();
    } catch (error) {
      logger.info({ id: delivery.ticketId, attempt: delivery.attempt, err: (error as Error).message }, 'webhook: POST failed; will retry');
    }
    if (status >= 200 && status < 300) {
      await queue.ackWebhook(delivery);
      deps.onAttempt?.('delivered');
      return;
    }
    deps.onAttempt?.('failed');
    if (status !== 0) logger.info({ id: delivery.ticketId, attempt: delivery.attempt, status }, 'webhook: the receiver refused; will retry');
    if (delivery.attempt >= config.maxAttempts) logger.warn({ id: delivery.ticketId, url: delivery.url }, 'webhook: last attempt failed; it goes to the webhook dead letters');
  }

  const loop = (async () => {
    while (!stopping.signal.aborted) {
      let handed: WebhookDelivery[] = [];
      try {
        handed = await queue.claimWebhooks(consumer, BATCH, claim);
        await Promise.all(handed.map((d) => post(d).catch((error: unknown) => {
          logger.warn({ id: d.ticketId, err: (error as Error).message }, 'webhook: could not record the delivery; it will be retried');
        })));
      } catch (error) {
        logger.debug({ err: (error as Error).message }, 'webhook: the queue is unavailable; retrying');
      }
      if (handed.length < BATCH) await pause(IDLE_POLL_MS, stopping.signal);
    }
  })();

  return {
    async stop() {
      stopping.abort();
      await loop;
    },
  };
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

/** Reads a request's callback (the Callback-Url header, else `callback` of a POST body), checked. */
export type CallbackReader = (headers: Record<string, string | string[] | undefined>, fromBody?: unknown) => string | undefined;

export function callbackReader(config: WebhookConfig | undefined): CallbackReader {
  return (headers, fromBody) => {
    const header = headers['callback-url'];
    const raw = header ?? fromBody;
    if (raw === undefined) return undefined;
    if (typeof raw !== 'string') throw invalidArgument('Callback-Url must be given once, as a string');
    return checkCallback(raw, config);
  };
}
