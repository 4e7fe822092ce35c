// Results pushed by the gateway (GET /v1/events, Server-Sent Events). The page holds one stream
// while it has tickets waiting, and none otherwise: a result pushed here is delivered to this page
// and to no other channel of the client. fetch() rather than EventSource, because EventSource
// cannot send the API key; the stream is resumed with Last-Event-ID after it breaks.
import { apiKey, sleep } from './api.js';

const RECONNECT_MS = 2000;

/** The text/event-stream format: blocks split by a blank line, `field: value` lines, `:` comments. */
function parseBlock(block) {
  const event = { event: 'message', id: undefined, data: [] };
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const at = line.indexOf(':');
    const field = at < 0 ? line : line.slice(0, at);
    const value = at < 0 ? '' : line.slice(at + 1).replace(/^ /, '');
    if (field === 'event') event.event = value;
    else if (field === 'id') event.id = value;
    else if (field === 'data') event.data.push(value);
  }
  return event.data.length > 0 ? { ...event, data: event.data.join('\n') } : undefined;
}

/**
 * `onResult(ticket)` for each pushed result; `onLive(boolean)` when the stream opens or breaks.
 * `want(true)` opens the stream (and keeps it open), `want(false)` closes it.
 */
export function createPushChannel({ onResult, onLive }) {
  let wanted = false;
  let live = false;
  let controller;
  let lastId;

  const setLive = (value) => {
    if (value === live) return;
    live = value;
    onLive(value);
  };

  async function readStream() {
    const headers = { accept: 'text/event-stream' };
    const key = apiKey();
    if (key) headers.authorization = `Bearer ${key}`;
    if (lastId) headers['last-event-id'] = lastId;
    controller = new AbortController();
    const response = await fetch('/v1/events', { headers, cache: 'no-store', signal: controller.signal });
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      // An id the gateway no longer knows (another backend, say): start afresh.
      if (response.status === 400) lastId = undefined;
      return;
    }
    setLive(true);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const event = parseBlock(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (event?.event !== 'result') continue;
        lastId = event.id ?? lastId;
        try { onResult(JSON.parse(event.data)); } catch (error) { console.error(error); }
      }
    }
  }

  async function run() {
    while (wanted) {
      try {
        await readStream();
      } catch {
        // Broken or closed: reconnect below while still wanted.
      }
      setLive(false);
      if (wanted) await sleep(RECONNECT_MS);
    }
  }

  return {
    want(on) {
      if (on === wanted) return;
      wanted = on;
      if (on) run();
      else controller?.abort();
    },
    live: () => live,
  };
}
