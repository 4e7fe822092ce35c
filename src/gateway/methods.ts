/**
 * Methods a path does not serve are answered 405 with `Allow`, never run. Fastify answers HEAD
 * of every GET route by running the GET handler; for a route with side effects (delivering
 * results, computing or enqueueing) that would let a proxy or a link checker eat deliveries, so
 * those routes are registered with `exposeHeadRoute: false`, and their HEAD is answered 405 here. CONNECT never reaches Fastify: Node hands the socket to a `connect`
 * listener or destroys it without a word, so one answers it here.
 */
import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CalcError } from '../shared/errors.js';
import { sendError } from './errors.js';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const;

const methodNotAllowed = (method: string, allow: readonly string[]) =>
  new CalcError('METHOD_NOT_ALLOWED', `${method.slice(0, 16)} is not served here; allowed: ${allow.join(', ')}`);

/** The methods some route serves at this path, for a 405 instead of a 404. */
function allowedMethods(app: FastifyInstance, path: string): string[] {
  return METHODS.filter((method) => app.findRoute({ method, url: path }) != null);
}

/** From the not-found handler: true when it answered 405 because the path exists under other methods. */
export function answerWrongMethod(app: FastifyInstance, request: FastifyRequest, reply: FastifyReply, path: string): boolean {
  const allow = allowedMethods(app, path);
  if (allow.length === 0) return false;
  reply.header('allow', allow.join(', '));
  sendError(reply, methodNotAllowed(request.method, allow));
  return true;
}

/** Answers CONNECT (a proxy request) with the contract's JSON 405 instead of a silent close. */
export function answerConnect(app: FastifyInstance): void {
  app.server.on('connect', (_request: unknown, socket: Socket) => {
    const body = JSON.stringify(methodNotAllowed('CONNECT', ['GET', 'HEAD', 'POST']).toJSON());
    socket.end(`HTTP/1.1 405 Method Not Allowed\r\nallow: GET, HEAD, POST\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });
}
