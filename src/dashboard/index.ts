/**
 * The dashboard: a static page at `/` and its assets under `/dashboard/`, plain files with no
 * build step. The page reads everything it shows from the gateway's own JSON routes
 * (`/v1/status`, `/v1/activity`, the compute and results routes); nothing here holds state.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { notFound } from '../shared/errors.js';

// `../../src/…` resolves to the same folder from src/dashboard (tsx) and dist/dashboard (built).
const PUBLIC_DIR = new URL('../../src/dashboard/public/', import.meta.url);

/** The only files served: a request for any other name is 404, so no path ever reaches the disk. */
const ASSETS: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'api.js': 'text/javascript; charset=utf-8',
  'send.js': 'text/javascript; charset=utf-8',
  'events.js': 'text/javascript; charset=utf-8',
  'services.js': 'text/javascript; charset=utf-8',
  'activity.js': 'text/javascript; charset=utf-8',
  'sparkline.js': 'text/javascript; charset=utf-8',
  'dom.js': 'text/javascript; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
};

// Same-origin only: no inline script or style, no framing, fetch() to this gateway alone.
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

interface Asset {
  readonly body: Buffer;
  readonly etag: string;
}

export function dashboardRoutes(app: FastifyInstance): void {
  // Read on first use, not at start-up: a gateway without the page still serves the API.
  const cache = new Map<string, Promise<Asset>>();
  const load = (name: string): Promise<Asset> => {
    let asset = cache.get(name);
    if (!asset) {
      asset = readFile(new URL(name, PUBLIC_DIR)).then((body) => ({
        body,
        etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
      }));
      asset.catch(() => cache.delete(name));
      cache.set(name, asset);
    }
    return asset;
  };

  const serve = async (name: string, request: FastifyRequest, reply: FastifyReply) => {
    const type = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
    if (type === undefined) throw notFound(`no dashboard asset ${JSON.stringify(name.slice(0, 60))}`);
    const asset = await load(name).catch(() => {
      throw notFound(`the dashboard asset ${name} is not installed`);
    });
    reply
      .header('content-security-policy', CONTENT_SECURITY_POLICY)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      // Revalidate every time: the page is tiny and must never run stale against a newer gateway.
      .header('cache-control', 'no-cache')
      .header('etag', asset.etag)
      .type(type);
    if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
    return reply.send(asset.body);
  };

  app.get('/', { schema: { hide: true } }, (request, reply) => serve('index.html', request, reply));
  app.get<{ Params: { asset: string } }>(
    '/dashboard/:asset',
    { schema: { hide: true } },
    (request, reply) => serve(request.params.asset, request, reply),
  );
}
