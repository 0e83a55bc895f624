// FLOWS on the admin listener:
//   GET  /flows/issues?kind=&state=&workstation=&bucket=&limit=&after=   issues, cursor paged
//   POST /flows/issues/:id/ack                                          a person has seen it
//   GET  /flows/workstations                                            ingest state per workstation
//   GET  /flows/status                                                  reconciler: last full pass, progress, backlog
//   POST /flows/scrub {"bucket"?, "prefix"?}                            run a pass now and wait for it
// Reading needs the readonly role, acknowledging readwrite, scrubbing admin.
import type { FastifyInstance } from 'fastify';
import { ISSUE_KINDS, ISSUE_STATES, type IssueKind, type IssueLog, type IssueState, type Reconciler } from '../tiering/index.js';
import { authenticateAdmin, requireRole } from './admin-auth.js';
import type { CredentialLookup } from './s3/index.js';

export interface FlowsDeps {
  issues: IssueLog;
  reconciler: Reconciler;
  /** Per-workstation ingest state (empty when no workstation is configured). */
  workstations: () => Promise<unknown[]>;
}

const MAX_PAGE = 1000;

function problem(status: number, detail: string) {
  return { type: 'about:blank', title: status === 404 ? 'Not Found' : 'Bad Request', status, detail };
}

export function flowsRoutes(deps: FlowsDeps, credentials: CredentialLookup) {
  return async (app: FastifyInstance) => {
    app.get<{ Querystring: { kind?: IssueKind; state?: IssueState; workstation?: string; bucket?: string; limit?: number; after?: string } }>(
      '/flows/issues',
      {
        preHandler: requireRole(credentials, 'readonly'),
        schema: {
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              kind: { enum: [...ISSUE_KINDS] },
              state: { enum: [...ISSUE_STATES] },
              workstation: { type: 'string', minLength: 1 },
              bucket: { type: 'string', minLength: 1 },
              limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: 100 },
              after: { type: 'string', pattern: '^[0-9a-f]{24}$' },
            },
          },
        },
      },
      async (req) => {
        const { limit = 100, after, ...filter } = req.query;
        return deps.issues.list(filter, limit, after);
      },
    );

    app.post<{ Params: { id: string } }>('/flows/issues/:id/ack', { preHandler: requireRole(credentials, 'readwrite') }, async (req, reply) => {
      const who = authenticateAdmin(req.headers.authorization, credentials, 'readwrite').accessKey;
      const rec = /^[0-9a-f]{24}$/.test(req.params.id) ? await deps.issues.acknowledge(req.params.id, who) : undefined;
      if (!rec) return reply.code(404).type('application/problem+json').send(problem(404, `no issue ${req.params.id}`));
      return rec;
    });

    app.get('/flows/workstations', { preHandler: requireRole(credentials, 'readonly') }, async () => ({ workstations: await deps.workstations() }));

    app.get('/flows/status', { preHandler: requireRole(credentials, 'readonly') }, async () => deps.reconciler.status());

    app.post<{ Body: { bucket?: string; prefix?: string } | undefined }>(
      '/flows/scrub',
      {
        preHandler: requireRole(credentials, 'admin'),
        schema: {
          body: {
            type: ['object', 'null'],
            additionalProperties: false,
            properties: { bucket: { type: 'string', minLength: 1 }, prefix: { type: 'string' } },
          },
        },
      },
      async (req, reply) => {
        const { bucket, prefix } = req.body ?? {};
        if (prefix !== undefined && bucket === undefined) return reply.code(400).type('application/problem+json').send(problem(400, 'a prefix needs a bucket'));
        if (bucket !== undefined && !(await deps.reconciler.bucketExists(bucket))) {
          return reply.code(404).type('application/problem+json').send(problem(404, `no bucket ${bucket}`));
        }
        return deps.reconciler.scrub({ ...(bucket !== undefined && { bucket }), ...(prefix && { prefix }) });
      },
    );
  };
}
