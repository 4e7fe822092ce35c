/**
 * The gateway's sockets are bounded, so that idle connections cannot use up the process's file
 * descriptors (under `ulimit -n 1024`, 1,100 idle connections once locked every new client out
 * until Node's minute-long timeouts freed them). At CALC_MAX_CONNECTIONS a new connection evicts
 * the oldest one with no request in progress (a keep-alive or never-used socket: closing it loses
 * nothing); only when every connection is busy is the newcomer refused.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../shared/logger.js';

export function capConnections(server: Server, maxConnections: number, logger: Logger): void {
  // Requests in progress per socket; insertion order is age, oldest first.
  const sockets = new Map<Socket, number>();
  let evicted = 0;
  let lastLogAt = 0;

  server.on('connection', (socket: Socket) => {
    sockets.set(socket, 0);
    socket.once('close', () => sockets.delete(socket));
    if (sockets.size <= maxConnections) return;
    let victim: Socket | undefined;
    for (const [candidate, busy] of sockets) {
      if (candidate !== socket && busy === 0) {
        victim = candidate;
        break;
      }
    }
    victim ??= socket;
    sockets.delete(victim);
    victim.destroy();
    evicted++;
    // One line per 10 s at most, however hard the connections come.
    if (Date.now() - lastLogAt > 10_000) {
      lastLogAt = Date.now();
      logger.warn({ maxConnections, evicted }, victim === socket ? 'connection limit reached with every connection busy; new connection refused' : 'connection limit reached; idle connections closed');
      evicted = 0;
    }
  });

  server.on('request', (request, response) => {
    const socket = request.socket as Socket;
    if (!sockets.has(socket)) return;
    sockets.set(socket, sockets.get(socket)! + 1);
    response.once('close', () => {
      const busy = sockets.get(socket);
      if (busy !== undefined) sockets.set(socket, Math.max(0, busy - 1));
    });
  });
}
