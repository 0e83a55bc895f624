// Bulk import: NDJSON or CSV as a stream. Each line is validated on its own
// (schema, links to stored objects); good lines are written in batches, each
// one atomic with its indexes, bad lines are reported with their number and
// field errors. Records are keyed by their catalogue number, so re-running an
// import (after a crash, say) creates nothing twice.
import type { Engine } from '../tiering/index.js';
import { parseCsvChunks, splitLines } from './csv.js';
import { RecodeError, type FieldError } from './errors.js';
import { checkLinks } from './media.js';
import type { CollectionSchema } from './schema.js';
import type { MediaLink, RecodeStore, RecordInput } from './store.js';

export interface ImportItem {
  line: number;
  value?: unknown;
  error?: string;
}

export interface ImportSummary {
  lines: number;
  created: number;
  updated: number;
  unchanged: number;
  failed: number;
  /** The first MAX_REPORTED failures, by line. */
  errors: { line: number; errors: FieldError[] }[];
  durationMs: number;
}

const MAX_REPORTED = 1000;
export const MEDIA_COLUMN = 'media';

/** NDJSON lines: each a record as exported ({data, media, ...}) or bare data fields; a chunk of lines at a time. */
export async function* ndjsonItems(source: AsyncIterable<Buffer>): AsyncGenerator<ImportItem[]> {
  for await (const lines of splitLines(source)) {
    const items: ImportItem[] = [];
    for (const l of lines) {
      if (l.tooLong) items.push({ line: l.line, error: 'the line is longer than 1 MiB' });
      else if (l.text!.trim() !== '') {
        try {
          items.push({ line: l.line, value: JSON.parse(l.text!) });
        } catch (err) {
          items.push({ line: l.line, error: `not valid JSON: ${(err as Error).message}` });
        }
      }
    }
    yield items;
  }
}

/**
 * CSV rows under a header of schema fields (plus `media`: a JSON array of
 * links), a chunk of rows at a time. Numbers and objects are decoded by the
 * field's schema type; an empty cell is an absent field. Unknown columns
 * refuse the whole import.
 */
export async function* csvItems(source: AsyncIterable<Buffer>, schema: CollectionSchema): AsyncGenerator<ImportItem[]> {
  let header: string[] | undefined;
  for await (const rows of parseCsvChunks(source)) {
    const items: ImportItem[] = [];
    for (const row of rows) {
      if (!header) {
        header = row.fields;
        const unknown = header.map((h, i) => ({ h, i })).filter(({ h }) => h !== MEDIA_COLUMN && schema.typeOf(h) === undefined);
        if (unknown.length > 0) {
          throw new RecodeError('INVALID_REQUEST', 'the CSV header names fields the collection schema does not have', unknown.map(({ h, i }) => ({ pointer: `/header/${i}`, detail: `unknown field '${h}'` })));
        }
        continue;
      }
      items.push(csvItem(row, header, schema));
    }
    yield items;
  }
}

function csvItem(row: { line: number; fields: string[] }, header: string[], schema: CollectionSchema): ImportItem {
  const data: Record<string, unknown> = {};
  let media: unknown;
  let error: string | undefined;
  header.forEach((h, i) => {
    const cell = row.fields[i] ?? '';
    if (cell === '') return;
    if (h === MEDIA_COLUMN) {
      try {
        media = JSON.parse(cell);
      } catch {
        error = `column '${MEDIA_COLUMN}' is not a JSON array`;
      }
      return;
    }
    const type = schema.typeOf(h);
    if (type === 'number' || type === 'integer') data[h] = /^\s*$/.test(cell) || Number.isNaN(Number(cell)) ? cell : Number(cell);
    else if (type === 'object' || type === 'array') {
      try {
        data[h] = JSON.parse(cell);
      } catch {
        data[h] = cell; // the schema step reports the wrong type
      }
    } else data[h] = cell;
  });
  return error ? { line: row.line, error } : { line: row.line, value: media === undefined ? { data } : { data, media } };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Media links' shape (the route schema checks it for single records; bulk lines come here). */
export function mediaShape(media: unknown, root = '/media'): FieldError[] {
  if (media === undefined) return [];
  if (!Array.isArray(media)) return [{ pointer: root, detail: 'must be an array' }];
  const out: FieldError[] = [];
  media.forEach((m, i) => {
    if (!isObject(m)) return void out.push({ pointer: `${root}/${i}`, detail: 'must be an object' });
    for (const f of ['bucket', 'key', 'role']) if (typeof m[f] !== 'string' || m[f] === '') out.push({ pointer: `${root}/${i}/${f}`, detail: 'must be a non-empty string' });
    for (const f of Object.keys(m)) if (!['bucket', 'key', 'role'].includes(f)) out.push({ pointer: `${root}/${i}/${f}`, detail: `unknown field '${f}'` });
  });
  return out;
}

/** One import line as a record input, or its problems; links are checked with the engine after (checkLinks). */
function validateItem(item: ImportItem, schema: CollectionSchema): RecordInput | FieldError[] {
  if (item.error !== undefined) return [{ pointer: '', detail: item.error }];
  const v = item.value;
  if (!isObject(v)) return [{ pointer: '', detail: 'must be a JSON object' }];
  const data = isObject(v.data) ? v.data : 'data' in v ? v.data : v;
  const problems = schema.problems(data);
  if (v.media !== undefined) problems.push(...mediaShape(v.media));
  if (problems.length > 0) return problems;
  const media = ((v.media ?? []) as MediaLink[]).map((m) => ({ bucket: m.bucket, key: m.key, role: m.role }));
  return media.length > 0 ? { data: data as Record<string, unknown>, media } : { data: data as Record<string, unknown> };
}

export async function importRecords(
  store: RecodeStore,
  engine: Engine,
  items: AsyncIterable<ImportItem[]>,
  by: string,
  batchSize = 5000,
  maxHoldMs = 250,
): Promise<ImportSummary> {
  const t0 = performance.now();
  const sum: ImportSummary = { lines: 0, created: 0, updated: 0, unchanged: 0, failed: 0, errors: [], durationMs: 0 };
  let batch: RecordInput[] = [];
  let batchStarted = 0;
  // One batch commits (and fsyncs) while the next is parsed and validated; batches still commit in order.
  let inflight: Promise<void> = Promise.resolve();
  let failure: { err: unknown } | undefined;
  const settled = async () => {
    await inflight;
    if (failure) throw failure.err;
  };
  const flush = async () => {
    if (batch.length === 0) return;
    const b = batch;
    batch = [];
    await settled();
    // The handler is attached at once: a failed commit is never an unhandled rejection while lines are still arriving.
    inflight = store.upsertMany(b, by).then(
      (outcomes) => {
        for (const o of outcomes) sum[o]++;
      },
      (err: unknown) => {
        failure = { err };
      },
    );
  };
  const fail = (line: number, errors: FieldError[]) => {
    sum.failed++;
    if (sum.errors.length < MAX_REPORTED) sum.errors.push({ line, errors });
  };
  for await (const chunk of items) {
    for (const item of chunk) {
      sum.lines++;
      const r = validateItem(item, store.schema);
      if (Array.isArray(r)) {
        fail(item.line, r);
        continue;
      }
      // Only lines with links wait for the engine; the rest never leave this loop.
      const broken = r.media ? await checkLinks(engine, r.media) : [];
      if (broken.length > 0) {
        fail(item.line, broken);
        continue;
      }
      if (batch.length === 0) batchStarted = performance.now();
      batch.push(r);
      if (batch.length >= batchSize) await flush();
    }
    // A slow stream still commits what it has sent, at least every maxHoldMs.
    if (batch.length > 0 && performance.now() - batchStarted >= maxHoldMs) await flush();
  }
  await flush();
  await settled();
  sum.durationMs = Math.round(performance.now() - t0);
  return sum;
}
