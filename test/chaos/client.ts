/**
 * A well-behaved client of the gateway: every request carries its Idempotency-Key, and a request
 * that gets no definitive answer (connection refused or reset because the gateway was killed, a
 * timeout, a 503 because the queue was restarting) is sent again, the same request with the same
 * key, with capped exponential backoff, until it gets 200, 202 or a 4xx, or runs out of attempts.
 * That retry is what makes "no request lost" hold across a gateway crash.
 */
import { http } from '../helpers/gateway.js';
import { isDefinitive, type Ledger, type Reply, type SendKind } from './ledger.js';
import type { RequestSpec } from './workload.js';

export interface RetryPolicy {
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 40, baseDelayMs: 50, maxDelayMs: 1000 };

export const authHeaders = (apiKey: string) => ({ authorization: `Bearer ${apiKey}` });

/** One HTTP exchange, never throwing: a failure to get any answer is status 0 with its cause. */
export async function exchange(url: string, init: RequestInit): Promise<Reply> {
  try {
    const reply = await http(url, init);
    return { status: reply.status, body: reply.body ?? reply.text };
  } catch (error) {
    return { status: 0, error: causeOf(error) };
  }
}

/** Sends `spec` until a definitive answer, recording every attempt in the ledger; resolves to the last reply. */
export async function sendRequest(
  gatewayUrl: string,
  spec: RequestSpec,
  apiKey: string,
  ledger: Ledger,
  kind: SendKind,
  policy: RetryPolicy = DEFAULT_RETRY,
): Promise<Reply> {
  const send = ledger.send(spec.seq, kind);
  let reply: Reply = { status: 0, error: 'not sent' };
  for (let attempt = 1; attempt <= policy.maxAttempts; attempt++) {
    const headers: Record<string, string> = {
      ...authHeaders(apiKey),
      'idempotency-key': spec.key,
      // Every log line of this attempt, in every process it touches, carries the key.
      'x-request-id': `${spec.key}.${kind[0]}${attempt}`,
    };
    if (spec.body !== undefined) headers['content-type'] = 'application/json';
    reply = await exchange(`${gatewayUrl}${spec.path}`, { method: spec.method, headers, ...(spec.body !== undefined ? { body: spec.body } : {}) });
    ledger.attempt(spec.seq, send, reply);
    if (isDefinitive(reply.status)) return reply;
    await sleep(Math.min(policy.baseDelayMs * 1.6 ** (attempt - 1), policy.maxDelayMs) * (0.5 + Math.random() / 2));
  }
  return reply;
}

/** A GET that is retried the same way until it is answered at all (any status but 0 and 503). */
export async function readWithRetry(url: string, apiKey: string, policy: RetryPolicy = DEFAULT_RETRY): Promise<Reply> {
  let reply: Reply = { status: 0, error: 'not sent' };
  for (let attempt = 1; attempt <= policy.maxAttempts; attempt++) {
    reply = await exchange(url, { headers: authHeaders(apiKey) });
    if (reply.status !== 0 && reply.status !== 503) return reply;
    await sleep(Math.min(policy.baseDelayMs * 1.6 ** (attempt - 1), policy.maxDelayMs));
  }
  return reply;
}

function causeOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? error.name ?? error.message;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
