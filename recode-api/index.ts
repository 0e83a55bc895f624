// RECODE: the collections-metadata API, a fastify plugin built from injected
// parts (engine, credential store, logger, metrics registry) over its own
// LevelDB. Mounted by the gateway's admin listener under /recode/v1.
import { join } from 'node:path';
import { Ajv } from 'ajv';
import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from 'prom-client';
import type { CredentialLookup } from '../gateway/s3/index.js';
import { Periodic, type Engine, type Logger } from '../tiering/index.js';
import { RecodeError, toProblem, toRecodeError } from './errors.js';
import { createRecodeMetrics } from './metrics.js';
import { routeDoc, type RouteDoc } from './openapi.js';
import { registerRoutes } from './routes.js';
import { brokenLinks, LinkReporter, type LinkIssues } from './media.js';
import { RecodeStore, type MediaLink } from './store.js';

export { RecodeStore, idString, parseId, type StoredRecord, type MediaLink, type LinkEntry } from './store.js';
export { brokenLinks, type LinkIssues } from './media.js';
export { RECODE_ERRORS, RecodeError, type Problem } from './errors.js';
export { DARWIN_CORE_SCHEMA } from './schema.js';

export const RECODE_PREFIX = '/recode/v1';

export interface RecodeDeps {
  engine: Engine;
  credentials: CredentialLookup;
  log: Logger;
  registry: Registry;
  /** Where the store lives: `<dataDir>/recode`, opened on register and closed with the server. */
  dataDir?: string;
  /** An open store instead (the caller closes it). */
  store?: RecodeStore;
  /** The base URL stored objects are served from (the S3 endpoint), for DwC-A media links. */
  mediaBaseUrl?: () => string | undefined;
  /** FLOWS's issue log: broken links found by reads and walks are reported there. */
  issues?: LinkIssues;
  /** How often every link is checked (with `issues`); none when absent. */
  linkCheckEveryMs?: number;
  /** How often download counts are folded (RecodeStore.foldDownloadCounts); default daily. */
  countFoldEveryMs?: number;
}

export function buildRecode(deps: RecodeDeps): FastifyPluginAsync {
  return async (app, opts: { prefix?: string }) => {
    const owned = deps.store === undefined;
    if (!deps.store && !deps.dataDir) throw new Error('buildRecode needs dataDir or store');
    const store = deps.store ?? (await RecodeStore.open(join(deps.dataDir!, 'recode')));
    if (owned) app.addHook('onClose', async () => store.close());
    const metrics = createRecodeMetrics(deps.registry, () => store.collections());
    const prefix = opts.prefix ?? RECODE_PREFIX;

    // Bodies are validated without coercion and nothing unknown is dropped
    // silently; query strings and paths are coerced (they are all text).
    const bodyAjv = new Ajv({ allErrors: true, removeAdditional: false, useDefaults: true, coerceTypes: false, strict: false });
    const queryAjv = new Ajv({ allErrors: true, removeAdditional: false, useDefaults: true, coerceTypes: 'array', strict: false });
    app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : queryAjv).compile(schema));

    // Import bodies stream straight to the handler, unparsed and unbounded.
    app.addContentTypeParser(['application/x-ndjson', 'text/csv'], (_req, payload, done) => done(null, payload));

    const routes: RouteDoc[] = [];
    app.addHook('onRoute', (r) => void routes.push(...routeDoc(r)));

    app.addHook('onResponse', async (req, reply) => {
      const route = req.routeOptions.url ?? 'unmatched';
      metrics.requests.inc({ method: req.method, route, status: String(reply.statusCode) });
      metrics.seconds.observe({ method: req.method, route }, reply.elapsedTime / 1000);
    });

    app.setErrorHandler(async (err, req, reply) => {
      const e = toRecodeError(err);
      if (e.status >= 500) deps.log.error({ err: String((err as Error)?.stack ?? err), url: req.url }, 'RECODE request failed');
      // An early refusal may leave a streamed body unread: drain it so the connection stays usable.
      if (!req.raw.readableEnded) req.raw.resume();
      return reply.code(e.status).type('application/problem+json').send(toProblem(e, req.url));
    });
    app.setNotFoundHandler(async (req, reply) =>
      reply.code(404).type('application/problem+json').send(toProblem(new RecodeError('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`), req.url)),
    );

    const mediaUrl = (m: MediaLink) => {
      const base = deps.mediaBaseUrl?.();
      const path = `${encodeURIComponent(m.bucket)}/${m.key.split('/').map(encodeURIComponent).join('/')}`;
      return base ? `${base.replace(/\/$/, '')}/${path}` : `s3://${m.bucket}/${m.key}`;
    };
    const links = deps.issues && new LinkReporter(deps.issues, deps.log);
    registerRoutes(app, { store, engine: deps.engine, credentials: deps.credentials, metrics, routes, prefix, mediaUrl, ...(links && { links }) });

    // An export appends one count entry per record; a fold on a schedule keeps them one per record.
    const foldEvery = deps.countFoldEveryMs ?? 24 * 3600_000;
    const folds = new Periodic('RECODE download count fold', foldEvery, async () => {
      const r = await store.foldDownloadCounts();
      if (r.entries > 0) deps.log.info(r, 'RECODE download counts folded');
    }, deps.log);
    folds.start(foldEvery);
    app.addHook('onClose', () => folds.stop());

    // Links to objects deleted while no one reads their records are found by a walk over every link on a schedule.
    if (links && deps.linkCheckEveryMs) {
      const checks = new Periodic('RECODE link check', deps.linkCheckEveryMs, async () => {
        const r = await brokenLinks(store, deps.engine, undefined, Infinity, links);
        deps.log.info({ broken: r.broken.length }, 'RECODE link check finished');
      }, deps.log);
      checks.start(deps.linkCheckEveryMs);
      app.addHook('onClose', () => checks.stop());
    }
  };
}
