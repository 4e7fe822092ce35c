/**
 * The control socket of `calcmesh up`: `calcmesh restart <name>` asks the supervisor to stop one
 * of its own children (SIGTERM, or the signal given) and start it again at once, instead of a
 * `pkill -f` that would hit every such process on the machine. One JSON line each way over a
 * Unix socket (CALC_CONTROL_SOCKET, by default `up.sock` in the data directory).
 */
import { existsSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { createInterface } from 'node:readline';

export interface ControlRequest {
  readonly command: 'restart';
  readonly name: string;
  readonly signal?: NodeJS.Signals;
}

export interface ControlReply {
  readonly ok: boolean;
  readonly message: string;
}

const MAX_LINE = 4096;
const SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGKILL', 'SIGINT', 'SIGHUP'];

/** Serves the socket; a stale socket file (no supervisor behind it) is replaced, a live one is left alone. */
export async function serveControl(path: string, handle: (request: ControlRequest) => ControlReply): Promise<Server> {
  if (existsSync(path)) {
    if (await answers(path)) throw new Error(`another calcmesh up already listens on ${path}`);
    unlinkSync(path);
  }
  const server = createServer((socket) => {
    socket.setTimeout(5000, () => socket.destroy());
    const lines = createInterface({ input: socket, crlfDelay: Infinity });
    let size = 0;
    socket.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_LINE) socket.destroy(); // a control request is one short line
    });
    lines.once('line', (line) => {
      let reply: ControlReply;
      try {
        reply = handle(parseRequest(line));
      } catch (error) {
        reply = { ok: false, message: (error as Error).message };
      }
      socket.end(`${JSON.stringify(reply)}\n`);
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(path, resolve));
  server.unref();
  return server;
}

function parseRequest(line: string): ControlRequest {
  const raw = JSON.parse(line) as Partial<ControlRequest>;
  if (raw.command !== 'restart' || typeof raw.name !== 'string') throw new Error('expected {"command":"restart","name":…}');
  if (raw.signal !== undefined && !SIGNALS.includes(raw.signal)) throw new Error(`signal must be one of ${SIGNALS.join(', ')}`);
  return { command: 'restart', name: raw.name, ...(raw.signal && { signal: raw.signal }) };
}

/** Sends one request to the supervisor at `path` and resolves with its reply. */
export function sendControl(path: string, request: ControlRequest, timeoutMs = 5000): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    const timer = setTimeout(() => socket.destroy(new Error(`no answer from ${path} within ${timeoutMs} ms`)), timeoutMs);
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const hint = error.code === 'ENOENT' || error.code === 'ECONNREFUSED' ? `no calcmesh up is running with control socket ${path}` : error.message;
      reject(new Error(hint));
    });
    const lines = createInterface({ input: socket });
    // readline re-emits its input's errors; the socket's own listener above answers them.
    lines.on('error', () => undefined);
    lines.once('line', (line) => {
      clearTimeout(timer);
      socket.end();
      try {
        resolve(JSON.parse(line) as ControlReply);
      } catch {
        reject(new Error(`unreadable answer from ${path}`));
      }
    });
    socket.write(`${JSON.stringify(request)}\n`);
  });
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
