// Admin routes that force tier transitions: POST /admin/tier/code|stub|recall
// with {"bucket": "...", "path": "..."}. `path` names one object if it
// exists, else every object under it as a prefix; absent, the whole bucket.
// Objects are handled one at a time so a large prefix never floods the sites.
import type { FastifyInstance } from 'fastify';
import { EngineError, type Engine, type ObjectRecord, type TransitionResult } from '../tiering/index.js';
import { requireRole } from './admin-auth.js';
import type { CredentialLookup } from './s3/index.js';

export const TIER_ACTIONS = ['code', 'stub', 'recall'] as const;
export type TierAction = (typeof TIER_ACTIONS)[number];

export interface TierOutcome {
  action: TierAction;
  bucket: string;
  matched: number;
  changed: number;
  failed: { key: string; error: string }[];
}

async function transition(engine: Engine, action: TierAction, bucket: string, key: string): Promise<TransitionResult> {
  if (action === 'code') return engine.codeObject(bucket, key);
  if (action === 'stub') return engine.stubObject(bucket, key);
  const before = await engine.headObject(bucket, key);
  if (before.tier !== 'stub') return 'unchanged';
  const after = await engine.recallObject(bucket, key);
  return after?.tier === 'coded' ? 'changed' : 'unchanged';
}

async function* targets(engine: Engine, bucket: string, path: string): AsyncGenerator<ObjectRecord> {
  if (path !== '') {
    const one = await engine.headObject(bucket, path).catch((err) => {
      if (err instanceof EngineError && err.code === 'NO_SUCH_KEY') return undefined;
      throw err;
    });
    if (one) {
      yield one;
      return;
    }
  }
  let after: string | undefined;
  for (;;) {
    const page = await engine.listObjects(bucket, { prefix: path, maxKeys: 1000, ...(after !== undefined && { after }) });
    yield* page.objects;
    if (!page.isTruncated || page.last === undefined) return;
    after = page.last;
  }
}

export function tierRoutes(engine: Engine, credentials: CredentialLookup) {
  return async (app: FastifyInstance) => {
    app.post<{ Params: { action: TierAction }; Body: { bucket: string; path?: string } }>(
      '/admin/tier/:action',
      {
        preHandler: requireRole(credentials, 'admin'),
        schema: {
          params: { type: 'object', properties: { action: { enum: [...TIER_ACTIONS] } }, required: ['action'] },
          body: {
            type: 'object',
            additionalProperties: false,
            required: ['bucket'],
            properties: { bucket: { type: 'string', minLength: 1 }, path: { type: 'string' } },
          },
        },
      },
      async (req, reply) => {
        const { action } = req.params;
        const { bucket, path = '' } = req.body;
        const out: TierOutcome = { action, bucket, matched: 0, changed: 0, failed: [] };
        try {
          for await (const rec of targets(engine, bucket, path)) {
            out.matched++;
            try {
              if ((await transition(engine, action, bucket, rec.key)) === 'changed') out.changed++;
            } catch (err) {
              out.failed.push({ key: rec.key, error: (err as Error).message });
            }
          }
        } catch (err) {
          if (err instanceof EngineError && err.code === 'NO_SUCH_BUCKET') {
            return reply.code(404).type('application/problem+json').send({ title: 'Not Found', status: 404, detail: err.message });
          }
          throw err;
        }
        return reply.code(out.failed.length > 0 ? 500 : 200).send(out);
      },
    );
  };
}
