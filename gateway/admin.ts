// The admin listener: everything that is not S3 (/metrics, /healthz,
// /readyz, RECODE under /recode/v1; admin and FLOWS routes later), on its own port so no
// bucket name can ever collide with it.
import Fastify, { type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import type { Registry } from 'prom-client';
import type { Engine } from '../tiering/index.js';
import type { CredentialLookup } from './s3/index.js';
import { flowsRoutes, type FlowsDeps } from './flows-routes.js';
import { tierRoutes } from './tier-routes.js';

export interface AdminDeps {
  engine: Engine;
  registry: Registry;
  /** The S3 credential store; admin routes authenticate with requireRole (admin-auth.ts). */
  credentials: CredentialLookup;
  /** Replica sites that must be up for a write to succeed. */
  writeQuorum: { hot: string; replicas: string[]; minReplicas: number };
  /** The RECODE collections API (recode-api buildRecode), mounted under /recode/v1. */
  recode?: FastifyPluginAsync;
  flows: FlowsDeps;
}

export function buildAdmin({ engine, registry, credentials, writeQuorum, recode, flows }: AdminDeps): FastifyInstance {
  // Path parameters carry RECODE catalogue numbers (percent-encoded, up to 128 characters).
  const app = Fastify({ logger: false, routerOptions: { maxParamLength: 2048 } });
  void app.register(tierRoutes(engine, credentials));
  void app.register(flowsRoutes(flows, credentials));
  if (recode) void app.register(recode, { prefix: '/recode/v1' });
  app.get('/metrics', async (_req, reply) => {
    await engine.checkHealth();
    reply.header('content-type', registry.contentType).send(await registry.metrics());
  });
  // Liveness: the process answers.
  app.get('/healthz', async () => ({ status: 'ok' }));
  // Readiness: a write would succeed under the replication policy.
  app.get('/readyz', async (_req, reply) => {
    const sites = await engine.checkHealth();
    const replicasUp = writeQuorum.replicas.filter((n) => sites[n]).length;
    const ready = sites[writeQuorum.hot] === true && replicasUp >= writeQuorum.minReplicas;
    reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', sites });
  });
  return app;
}
