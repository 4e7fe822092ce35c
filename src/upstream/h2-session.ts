/** What both node:http2 clients (unary and Stream) do the same way with a session and its trailers. */
import type { ClientHttp2Session } from 'node:http2';

/** Destroys the session unless it answers a PING within `timeoutMs`; its streams then fail and the next call dials anew. */
export function probe(session: ClientHttp2Session, timeoutMs: number): void {
  if (session.closed || session.destroyed) return;
  const timer = setTimeout(() => session.destroy(new Error(`no PING answer in ${timeoutMs} ms`)), timeoutMs);
  timer.unref();
  try {
    session.ping((error) => {
      clearTimeout(timer);
      if (error) session.destroy(error);
    });
  } catch {
    clearTimeout(timer); // a PING already outstanding, or the session is closing
  }
}

/** grpc-message is percent-encoded; a peer that got it wrong (or sent none) must not crash the caller. */
export function percentDecoded(raw: unknown): string {
  const text = typeof raw === 'string' ? raw : '';
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
