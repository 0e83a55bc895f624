// The S3 door: a fastify instance with one catch-all route that authenticates,
// dispatches through the route table and maps every failure to an S3 XML
// error in one place. Bodies are never parsed by fastify: handlers stream
// the raw request.
import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Registry } from 'prom-client';
import { authenticate } from './auth.js';
import { S3Error, toS3Error } from './errors.js';
import type { S3Deps } from './handlers/common.js';
import { createS3Metrics } from './metrics.js';
import { parseTarget, sendXml } from './request.js';
import { allowed, matchRoute } from './routes.js';
import { el } from './xml.js';

export type { S3Deps, S3Options } from './handlers/common.js';
export type { Credential, CredentialLookup, Role } from './auth.js';

declare module 'fastify' {
  interface FastifyRequest {
    s3op: string;
  }
}

export function buildS3(deps: S3Deps & { registry: Registry }): FastifyInstance {
  const metrics = createS3Metrics(deps.registry);
  const app = Fastify({
    logger: false,
    genReqId: nextRequestId,
    bodyLimit: 1 << 20,
    // Keys may legitimately hold "//" and trailing slashes: never rewrite the path.
    routerOptions: { maxParamLength: 8192, ignoreTrailingSlash: false, ignoreDuplicateSlashes: false },
    // The router refuses targets it cannot percent-decode before any handler runs.
    frameworkErrors: (err, req, reply) =>
      sendError(req, reply, err.code === 'FST_ERR_BAD_URL' ? new S3Error('InvalidArgument', 'The request target is not valid percent-encoded UTF-8.') : toS3Error(err)),
  });
  app.decorateRequest('s3op', '');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null));

  app.addHook('onResponse', async (req, reply) => {
    const op = req.s3op || 'Unknown';
    metrics.requests.inc({ operation: op, status: String(reply.statusCode) });
    metrics.seconds.observe({ operation: op }, reply.elapsedTime / 1000);
    const sent = Number(reply.getHeader('content-length') ?? 0);
    if (req.method === 'GET' && reply.statusCode < 300 && sent > 0) metrics.bytesOut.inc({ operation: op }, sent);
    const received = Number(req.headers['x-amz-decoded-content-length'] ?? req.headers['content-length'] ?? 0);
    if (reply.statusCode < 300 && received > 0) metrics.bytesIn.inc({ operation: op }, received);
  });

  const handle = async (req: FastifyRequest, reply: FastifyReply) => {
    reply.header('x-amz-request-id', req.id).header('server', 'Valentine');
    try {
      const target = parseTarget(req.raw.url ?? '/');
      const scope = target.bucket === '' ? 'service' : target.key === '' ? 'bucket' : 'object';
      const route = matchRoute(req.method, scope, target.query, req.headers);
      const auth = authenticate({ method: req.method, url: req.raw.url ?? '/', headers: req.headers }, deps.credentials);
      if (route === undefined) throw new S3Error('MethodNotAllowed');
      if (route === 'unsupported') throw new S3Error('NotImplemented');
      req.s3op = route.op;
      if (!allowed(auth.credential.role, route.action)) throw new S3Error('AccessDenied');
      await route.handler({ ...target, req, reply, auth, requestId: req.id }, deps);
    } catch (err) {
      const e = toS3Error(err);
      if (e.status >= 500) deps.log.error({ err: String((err as Error)?.stack ?? err), requestId: req.id, op: req.s3op }, 'S3 request failed');
      // The body may be unread (an early refusal); drain it so the connection stays usable.
      if (!req.raw.readableEnded) req.raw.resume();
      if (!reply.sent) sendError(req, reply, e);
    }
    return reply;
  };
  const methods = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'] as const;
  app.route({ method: [...methods], url: '/', handler: handle, exposeHeadRoute: false });
  app.route({ method: [...methods], url: '/*', handler: handle, exposeHeadRoute: false });
  app.setNotFoundHandler(handle);
  return app;
}

// Request ids: a random prefix per process and a counter, unique across
// restarts without paying for random bytes on every request.
const requestIdPrefix = randomBytes(4).toString('hex').toUpperCase();
let requestCount = 0;
function nextRequestId(): string {
  requestCount = (requestCount + 1) % 0x1_0000_0000;
  return requestIdPrefix + requestCount.toString(16).toUpperCase().padStart(8, '0');
}

function sendError(req: FastifyRequest, reply: FastifyReply, e: S3Error): void {
  reply.header('x-amz-request-id', req.id);
  if (req.method === 'HEAD' || e.status === 304) {
    reply.code(e.status).send();
    return;
  }
  let resource = '/';
  try {
    resource = decodeURIComponent((req.raw.url ?? '/').split('?')[0] ?? '/');
  } catch {}
  sendXml(
    reply,
    el(
      'Error',
      el('Code', e.code),
      el('Message', e.message),
      Object.entries(e.detail).map(([k, v]) => el(k, v)),
      el('Resource', resource),
      el('RequestId', req.id),
    ),
    e.status,
  );
}
