// RECODE's route table: one declaration per route with the JSON Schemas
// fastify validates with (and the OpenAPI document is generated from), the
// role it needs, and its handler. Failures are thrown as RecodeErrors and
// mapped once, in index.ts.
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Engine } from '../tiering/index.js';
import { authenticateAdmin, requireRole } from '../gateway/admin-auth.js';
import type { CredentialLookup, Role } from '../gateway/s3/index.js';
import { csvItems, importRecords, ndjsonItems } from './bulk.js';
import { RecodeError } from './errors.js';
import { CONTENT_TYPES, EXPORT_FORMATS, csv, dwca, ndjson, type ExportFormat } from './export/formats.js';
import { lineOfText, recordView } from './record-json.js';
import type { RecordId } from './keys.js';
import { brokenLinks, checkLinks, resolveLinks, type LinkReporter } from './media.js';
import type { RecodeMetrics } from './metrics.js';
import { openApiDocument, type RouteDoc } from './openapi.js';
import { count, matchChunks, page, parseSearch, searchParameters } from './search.js';
import { idOf, idString, type MediaLink, type RecodeStore, type RecordInput, type StoredRecord } from './store.js';
import { EVENT_TYPES } from './workflow.js';

export interface RouteDeps {
  store: RecodeStore;
  engine: Engine;
  credentials: CredentialLookup;
  metrics: RecodeMetrics;
  routes: readonly RouteDoc[];
  prefix: string;
  /** Where a stored object can be fetched (the S3 endpoint), for DwC-A links. */
  mediaUrl: (m: MediaLink) => string;
  /** Where broken links are reported (FLOWS), when there is one. */
  links?: LinkReporter;
}

const ID_PARAMS = {
  type: 'object',
  required: ['institutionCode', 'collectionCode', 'catalogNumber'],
  properties: { institutionCode: { type: 'string', minLength: 1 }, collectionCode: { type: 'string', minLength: 1 }, catalogNumber: { type: 'string', minLength: 1 } },
} as const;

const MEDIA = {
  type: 'array',
  maxItems: 100,
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['bucket', 'key', 'role'],
    properties: { bucket: { type: 'string', minLength: 1, maxLength: 63 }, key: { type: 'string', minLength: 1, maxLength: 1024 }, role: { type: 'string', minLength: 1, maxLength: 64, description: 'image, 3d, label, ...' } },
  },
} as const;

const RECORD_BODY = {
  type: 'object',
  additionalProperties: false,
  required: ['data'],
  properties: { data: { type: 'object', description: 'fields of the collection schema in force (components.schemas.RecordData), validated field by field' }, media: MEDIA },
} as const;

const RECORD_VIEW = {
  type: 'object',
  additionalProperties: true,
  properties: {
    id: { type: 'string', description: 'institutionCode/collectionCode/catalogNumber' },
    version: { type: 'integer' },
    status: { type: 'string', enum: ['registered', 'acquired', 'accessioned', 'on-loan', 'deaccessioned'] },
    data: { type: 'object', additionalProperties: true },
    media: { type: 'array', items: { type: 'object', additionalProperties: true } },
  },
} as const;

const PAGING = { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 }, cursor: { type: 'string', maxLength: 4096 } } as const;
const RECORD_BODY_LIMIT = 256 * 1024;

/** The access key a request authenticated with (its onRequest hook already checked the role). */
function who(req: FastifyRequest, credentials: CredentialLookup): string {
  return authenticateAdmin(req.headers.authorization, credentials, 'readonly').accessKey;
}

function recordId(p: unknown): RecordId {
  const { institutionCode, collectionCode, catalogNumber } = p as Record<string, string>;
  return [institutionCode!, collectionCode!, catalogNumber!];
}

const etagOf = (rec: StoredRecord) => `"${rec.version}"`;

/** The version an If-Match names; changes without one are refused (428), so no update is lost. */
function ifMatch(req: FastifyRequest): number {
  const h = req.headers['if-match'];
  if (h === undefined) throw new RecodeError('PRECONDITION_REQUIRED');
  const m = /^\s*(?:W\/)?"?(\d+)"?\s*$/.exec(h);
  if (!m) throw new RecodeError('INVALID_REQUEST', 'If-Match must be the ETag of the record, e.g. "3"', [{ pointer: '/headers/if-match', detail: 'is not an ETag this API issued' }]);
  return Number(m[1]);
}

export function registerRoutes(app: FastifyInstance, d: RouteDeps): void {
  const { store, engine } = d;
  const auth = (role: Role) => ({ onRequest: requireRole(d.credentials, role) });

  async function checkedInput(body: { data: Record<string, unknown>; media?: MediaLink[] }): Promise<RecordInput> {
    const problems = store.schema.problems(body.data);
    if (problems.length > 0) throw new RecodeError('INVALID_RECORD', `the record breaks the collection schema in ${problems.length} place(s)`, problems);
    const broken = await checkLinks(engine, body.media ?? []);
    if (broken.length > 0) throw new RecodeError('BROKEN_MEDIA_LINK', 'media links must name stored objects', broken);
    return { data: body.data, ...(body.media && { media: body.media }) };
  }

  async function fullView(id: RecordId, rec: StoredRecord) {
    const media = await resolveLinks(engine, rec.media, d.links && { to: d.links, record: idString(id) });
    return { ...recordView(id, rec), media, downloads: await store.downloadCount(id) };
  }

  function sendRecord(reply: FastifyReply, id: RecordId, rec: StoredRecord, status = 200) {
    return fullView(id, rec).then((v) => reply.code(status).header('etag', etagOf(rec)).header('location', `${d.prefix}/records/${id.map(encodeURIComponent).join('/')}`).send(v));
  }

  app.get('/openapi.json', { config: { summary: 'This OpenAPI document, generated from the route schemas' } }, async () => openApiDocument(d.routes, d.prefix, store.schema.json));

  app.get('/schema', { ...auth('readonly'), config: { role: 'readonly', summary: 'The collection schema in force (JSON Schema for record data)' } }, async () => store.schema.json);

  app.put(
    '/schema',
    {
      ...auth('admin'),
      config: { role: 'admin', summary: 'Replace the collection schema (existing records are not re-validated)' },
      schema: { body: { type: 'object', required: ['type', 'properties'], properties: { type: { const: 'object' }, properties: { type: 'object' } } } },
    },
    async (req) => (await store.setSchema(req.body as Record<string, unknown>)).json,
  );

  app.get('/collections', { ...auth('readonly'), config: { role: 'readonly', summary: 'Live records per collection' } }, async () => ({ collections: store.collections() }));

  app.post(
    '/records',
    { ...auth('readwrite'), config: { role: 'readwrite', summary: 'Create a record' }, bodyLimit: RECORD_BODY_LIMIT, schema: { body: RECORD_BODY, response: { 201: RECORD_VIEW } } },
    async (req, reply) => {
      const input = await checkedInput(req.body as RecordInput);
      const rec = await store.create(input, who(req, d.credentials));
      return sendRecord(reply, idOf(input.data), rec, 201);
    },
  );

  app.get(
    '/records',
    {
      ...auth('readonly'),
      config: { role: 'readonly', summary: 'Search: filters combined with AND, cursor paging' },
      schema: {
        querystring: { type: 'object', additionalProperties: false, properties: { ...searchParameters(), ...PAGING, count: { type: 'boolean', default: false, description: 'also return the total number of matches' } } },
        response: {
          200: {
            type: 'object',
            properties: {
              items: { type: 'array', items: RECORD_VIEW },
              next: { type: 'string', description: 'cursor of the next page; absent on the last' },
              total: { type: 'integer' },
              scanned: { type: 'integer', description: 'index entries visited (a page stops early at 20,000)' },
            },
          },
        },
      },
    },
    async (req, reply) => {
      const q = req.query as Record<string, unknown>;
      const query = parseSearch(q);
      const p = await page(store, query, q.limit as number, q.cursor as string | undefined);
      const total = q.count ? await count(store, query) : undefined;
      // Items are the stored texts with their ids (record-json.ts): the same JSON as their views, written without building them.
      const items = p.items.map((m) => lineOfText(m.id, m.text)).join(',');
      const rest = JSON.stringify({ ...(p.next && { next: p.next }), ...(total !== undefined && { total }), scanned: p.scanned });
      return reply.type('application/json; charset=utf-8').send(`{"items":[${items}],${rest.slice(1)}`);
    },
  );

  app.get(
    '/records/:institutionCode/:collectionCode/:catalogNumber',
    { ...auth('readonly'), config: { role: 'readonly', summary: 'Read a record with its media (size, checksums, tier) and download count' }, schema: { params: ID_PARAMS, response: { 200: RECORD_VIEW } } },
    async (req, reply) => {
      const id = recordId(req.params);
      const rec = await store.get(id);
      if (!rec) throw new RecodeError('NOT_FOUND', `no record ${idString(id)}`);
      if (rec.deleted) throw new RecodeError('RECORD_DELETED', `${idString(id)} was deleted: ${rec.deleted.reason}`, [], { deleted: { ...rec.deleted, at: new Date(rec.deleted.at).toISOString() } });
      return sendRecord(reply, id, rec);
    },
  );

  app.put(
    '/records/:institutionCode/:collectionCode/:catalogNumber',
    {
      ...auth('readwrite'),
      config: { role: 'readwrite', summary: 'Replace a record (If-Match: its ETag)' },
      bodyLimit: RECORD_BODY_LIMIT,
      schema: { params: ID_PARAMS, body: RECORD_BODY, response: { 200: RECORD_VIEW } },
    },
    async (req, reply) => {
      const id = recordId(req.params);
      const version = ifMatch(req);
      const input = await checkedInput(req.body as RecordInput);
      return sendRecord(reply, id, await store.update(id, input, version, who(req, d.credentials)));
    },
  );

  app.delete(
    '/records/:institutionCode/:collectionCode/:catalogNumber',
    {
      ...auth('readwrite'),
      config: { role: 'readwrite', summary: 'Delete a record (soft, with a reason; If-Match: its ETag)' },
      schema: { params: ID_PARAMS, querystring: { type: 'object', required: ['reason'], properties: { reason: { type: 'string', minLength: 1, maxLength: 1000 } } } },
    },
    async (req, reply) => {
      const id = recordId(req.params);
      const rec = await store.remove(id, (req.query as { reason: string }).reason, ifMatch(req), who(req, d.credentials));
      return reply.header('etag', etagOf(rec)).send(recordView(id, rec));
    },
  );

  app.get(
    '/records/:institutionCode/:collectionCode/:catalogNumber/audit',
    {
      ...auth('readonly'),
      config: { role: 'readonly', summary: "A record's audit trail, oldest first (who, when, what changed, before/after)" },
      schema: { params: ID_PARAMS, querystring: { type: 'object', additionalProperties: false, properties: PAGING } },
    },
    async (req) => {
      const id = recordId(req.params);
      const q = req.query as { limit: number; cursor?: string };
      if (!(await store.get(id))) throw new RecodeError('NOT_FOUND', `no record ${idString(id)}`);
      const entries = await store.audit(id, q.cursor, q.limit + 1);
      const more = entries.length > q.limit;
      const items = entries.slice(0, q.limit).map((e) => ({ ...e, at: new Date(e.at).toISOString() }));
      return { items, ...(more && { next: items[items.length - 1]!.seq }) };
    },
  );

  app.post(
    '/events',
    {
      ...auth('readwrite'),
      config: { role: 'readwrite', summary: 'A workflow event (acquisition, accession, loan, return, deaccession) on one or many records: all or none' },
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['type', 'records'],
          properties: {
            type: { type: 'string', enum: EVENT_TYPES },
            records: { type: 'array', minItems: 1, maxItems: 10000, items: { type: 'string', description: 'institutionCode/collectionCode/catalogNumber' } },
            borrower: { type: 'string', minLength: 1, maxLength: 500 },
            dueDate: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$' },
            note: { type: 'string', maxLength: 2000 },
          },
          if: { properties: { type: { const: 'loan' } } },
          then: { required: ['borrower', 'dueDate'] },
        },
      },
    },
    async (req, reply) => {
      const ev = await store.applyEvent(req.body as Parameters<RecodeStore['applyEvent']>[0], who(req, d.credentials));
      return reply.code(201).send({ ...ev, at: new Date(ev.at).toISOString() });
    },
  );

  app.get('/events/:id', { ...auth('readonly'), config: { role: 'readonly', summary: 'A workflow event' }, schema: { params: { type: 'object', properties: { id: { type: 'string' } } } } }, async (req) => {
    const ev = await store.getEvent((req.params as { id: string }).id);
    if (!ev) throw new RecodeError('NOT_FOUND', 'no such event');
    return { ...ev, at: new Date(ev.at).toISOString() };
  });

  app.post(
    '/import',
    {
      ...auth('readwrite'),
      config: { role: 'readwrite', summary: 'Bulk import NDJSON or CSV (by Content-Type), idempotent on catalogue number; per-line errors reported', consumes: ['application/x-ndjson', 'text/csv'] },
    },
    async (req) => {
      const t0 = performance.now();
      let bytes = 0;
      const body = req.body as Readable;
      const source = (async function* () {
        for await (const c of body) {
          bytes += (c as Buffer).length;
          yield c as Buffer;
        }
      })();
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
      const items = type === 'text/csv' ? csvItems(source, store.schema) : ndjsonItems(source);
      const sum = await importRecords(store, engine, items, who(req, d.credentials));
      d.metrics.importBytes.inc(bytes);
      d.metrics.importSeconds.observe((performance.now() - t0) / 1000);
      for (const o of ['created', 'updated', 'unchanged', 'failed'] as const) d.metrics.importRecords.inc({ outcome: o }, sum[o]);
      return sum;
    },
  );

  app.get(
    '/export',
    {
      ...auth('readonly'),
      config: { role: 'readonly', summary: 'Export a search result as a stream (NDJSON, CSV or Darwin Core Archive); recorded as a download event', produces: Object.values(CONTENT_TYPES) },
      schema: {
        querystring: { type: 'object', additionalProperties: false, properties: { ...searchParameters(), format: { type: 'string', enum: EXPORT_FORMATS, default: 'ndjson' } } },
      },
    },
    async (req, reply) => {
      const q = req.query as Record<string, unknown>;
      const format = q.format as ExportFormat;
      const query = parseSearch(q);
      const { format: _f, ...shown } = q;
      const ev = await store.startDownload({ by: who(req, d.credentials), format, query: shown });
      const t0 = performance.now();
      // Download counts are written 5,000 records at a time, one write in flight while the export streams on.
      let pending: RecordId[] = [];
      let counting: Promise<void> = Promise.resolve();
      const countPending = async () => {
        await counting;
        const ids = pending;
        pending = [];
        counting = store.countDownloads(ev.id, ids);
      };
      const counted = (async function* () {
        for await (const chunk of matchChunks(store, query)) {
          ev.records += chunk.length;
          for (const m of chunk) pending.push(m.id);
          if (pending.length >= 5000) await countPending();
          yield chunk;
        }
        if (pending.length > 0) await countPending();
        await counting;
      })();
      const bytesOf = (c: Buffer | string) => (typeof c === 'string' ? Buffer.byteLength(c) : c.length);
      const produced = format === 'ndjson' ? ndjson(counted) : format === 'csv' ? csv(counted, store.schema) : dwca(counted, store.schema, d.mediaUrl);
      // The download event is final before the response ends (or when the client goes away).
      const body = Readable.from(
        (async function* () {
          try {
            for await (const c of produced) {
              ev.bytes += bytesOf(c);
              yield c;
            }
            ev.complete = true;
          } finally {
            d.metrics.exportRecords.inc({ format }, ev.records);
            d.metrics.exportBytes.inc({ format }, ev.bytes);
            d.metrics.exportSeconds.observe({ format }, (performance.now() - t0) / 1000);
            d.metrics.downloadEvents.inc({ format, complete: String(ev.complete) });
            // A client gone mid-export may leave a count write in flight: it lands before the download is finished (and foldable).
            await counting.catch(() => undefined);
            await store.finishDownload(ev);
          }
        })(),
      );
      const name = `recode-export-${ev.id}.${format === 'dwca' ? 'zip' : format}`;
      return reply.header('recode-download-id', ev.id).header('content-disposition', `attachment; filename="${name}"`).type(CONTENT_TYPES[format]).send(body);
    },
  );

  app.get('/downloads/:id', { ...auth('readonly'), config: { role: 'readonly', summary: 'A download event: who, query, records, bytes, time' }, schema: { params: { type: 'object', properties: { id: { type: 'string' } } } } }, async (req) => {
    const ev = await store.getDownload((req.params as { id: string }).id);
    if (!ev) throw new RecodeError('NOT_FOUND', 'no such download');
    return { ...ev, started: new Date(ev.started).toISOString(), ...(ev.finished !== undefined && { finished: new Date(ev.finished).toISOString() }) };
  });

  app.get(
    '/media/broken',
    {
      ...auth('readonly'),
      config: { role: 'readonly', summary: 'Media links whose stored object is gone (for FLOWS), cursor-paged' },
      schema: { querystring: { type: 'object', additionalProperties: false, properties: { cursor: PAGING.cursor, budget: { type: 'integer', minimum: 1, maximum: 100000, default: 10000 } } } },
    },
    async (req) => {
      const q = req.query as { cursor?: string; budget: number };
      const r = await brokenLinks(store, engine, q.cursor === undefined ? undefined : Buffer.from(q.cursor, 'base64url'), q.budget, d.links);
      return { broken: r.broken, ...(r.next && { next: r.next.toString('base64url') }) };
    },
  );
}
