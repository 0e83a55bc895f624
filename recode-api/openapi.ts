// The OpenAPI document, generated from the route table fastify validates
// with (collected by an onRoute hook), so it cannot drift from the code. The
// record data schema is the collection schema in force when it is served.
import type { RouteOptions } from 'fastify';
import { RECODE_ERRORS, problemType } from './errors.js';

export interface RouteDoc {
  method: string;
  url: string;
  summary?: string;
  role?: string;
  consumes?: string[];
  produces?: string[];
  schema?: { params?: Schemaish; querystring?: Schemaish; body?: Schemaish; response?: Record<string, unknown> };
}

interface Schemaish {
  properties?: Record<string, unknown>;
  required?: string[];
  [k: string]: unknown;
}

export function routeDoc(r: RouteOptions): RouteDoc[] {
  const methods = Array.isArray(r.method) ? r.method : [r.method];
  const config = (r.config ?? {}) as { summary?: string; role?: string; consumes?: string[]; produces?: string[] };
  return methods
    .filter((m) => m !== 'HEAD')
    .map((method) => ({ method, url: r.url, ...(config.summary && { summary: config.summary }), ...(config.role && { role: config.role }), ...(config.consumes && { consumes: config.consumes }), ...(config.produces && { produces: config.produces }), ...(r.schema && { schema: r.schema as RouteDoc['schema'] }) }));
}

const problemSchema = {
  type: 'object',
  description: 'RFC 9457 problem document (application/problem+json)',
  required: ['type', 'title', 'status', 'detail', 'code'],
  properties: {
    type: { type: 'string', enum: Object.keys(RECODE_ERRORS).map((c) => problemType(c as keyof typeof RECODE_ERRORS)) },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string', enum: Object.keys(RECODE_ERRORS) },
    instance: { type: 'string' },
    errors: { type: 'array', items: { type: 'object', properties: { pointer: { type: 'string' }, detail: { type: 'string' } } } },
  },
};

export function openApiDocument(routes: readonly RouteDoc[], prefix: string, collectionSchema: object): object {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = (r.url.startsWith(prefix) ? r.url.slice(prefix.length) || '/' : r.url).replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const s = r.schema ?? {};
    const parameters = [
      ...Object.entries(s.params?.properties ?? {}).map(([name, schema]) => ({ name, in: 'path', required: true, schema })),
      ...Object.entries(s.querystring?.properties ?? {}).map(([name, schema]) => ({ name, in: 'query', required: (s.querystring?.required ?? []).includes(name), schema })),
    ];
    const responses: Record<string, unknown> = {};
    for (const [status, schema] of Object.entries(s.response ?? {})) {
      const { description, ...rest } = schema as { description?: string };
      responses[status] = { description: description ?? 'OK', content: { [r.produces?.[0] ?? 'application/json']: { schema: rest } } };
    }
    if (Object.keys(responses).length === 0) responses['200'] = { description: 'OK' };
    responses.default = { description: 'A problem', content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } };
    paths[path] ??= {};
    paths[path][r.method.toLowerCase()] = {
      ...(r.summary && { summary: r.summary }),
      ...(r.role && { description: `Needs the ${r.role} role.`, security: [{ basic: [] }] }),
      ...(parameters.length > 0 && { parameters }),
      ...(s.body && { requestBody: { required: true, content: Object.fromEntries((r.consumes ?? ['application/json']).map((c) => [c, { schema: s.body }])) } }),
      ...(!s.body && r.consumes && { requestBody: { required: true, content: Object.fromEntries(r.consumes.map((c) => [c, { schema: { type: 'string', format: 'binary' } }])) } }),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'RECODE collections-metadata API', version: '1' },
    servers: [{ url: prefix }],
    paths,
    components: {
      securitySchemes: { basic: { type: 'http', scheme: 'basic', description: 'accessKey:secretKey from the S3 credential store' } },
      schemas: { Problem: problemSchema, RecordData: collectionSchema },
    },
  };
}
