// Search: filters on indexed fields combined with AND. A plan picks one
// ordered key range to walk (the driving index, or the records themselves)
// that yields results in the requested order; every filter, the driving one
// included, is then checked on the record by one function (matcher), so a
// plan can only make a search faster, never change its answer.
import { RecodeError } from './errors.js';
import { keys, type RecordId } from './keys.js';
import { DataFieldReader, decodeFields, isDeletedText, statusOfText, valueOfJson, type RecordFields } from './record-json.js';
import { INDEXES, indexValue, sortableNumber, UNINDEXED, type IndexKind } from './schema.js';
import type { RecodeStore } from './store.js';

export type Sort = 'catalogNumber' | 'eventDate' | 'index';
export const SORTS: readonly Sort[] = ['catalogNumber', 'eventDate', 'index'];

export type Filter =
  | { field: string; kind: IndexKind; op: 'eq' | 'prefix'; value: string }
  | { field: string; kind: IndexKind; op: 'range'; from?: string; to?: string };

export interface SearchQuery {
  institutionCode?: string;
  collectionCode?: string;
  filters: Filter[];
  sort: Sort;
}

/**
 * The query-string parameters search understands, as JSON Schema properties
 * (fastify validates with them; the OpenAPI document shows them):
 * `F` and `F.prefix` for text fields, `F.from` / `F.to` (inclusive) for dates and numbers.
 */
export function searchParameters(): Record<string, object> {
  const out: Record<string, object> = {
    institutionCode: { type: 'string', description: 'exact' },
    collectionCode: { type: 'string', description: 'exact' },
    sort: { type: 'string', enum: SORTS, default: 'catalogNumber', description: 'catalogNumber (institution, collection, number), eventDate, or index (the order of the most selective filter: fastest)' },
  };
  for (const [field, kind] of Object.entries(INDEXES)) {
    if (kind === 'text') {
      out[field] = { type: 'string', minLength: 1, description: 'exact match' };
      out[`${field}.prefix`] = { type: 'string', minLength: 1, description: 'prefix match (case-sensitive)' };
    } else if (kind === 'date') {
      const date = { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$' };
      out[`${field}.from`] = { ...date, description: 'first day covered >= (YYYY-MM-DD)' };
      out[`${field}.to`] = { ...date, description: 'first day covered <= (YYYY-MM-DD)' };
    } else {
      out[`${field}.from`] = { type: 'number', description: 'value >=' };
      out[`${field}.to`] = { type: 'number', description: 'value <=' };
    }
  }
  return out;
}

/** A search query from validated query-string parameters. */
export function parseSearch(q: Record<string, unknown>): SearchQuery {
  const filters: Filter[] = [];
  for (const [field, kind] of Object.entries(INDEXES)) {
    if (kind === 'text') {
      if (typeof q[field] === 'string') filters.push({ field, kind, op: 'eq', value: q[field] });
      if (typeof q[`${field}.prefix`] === 'string') filters.push({ field, kind, op: 'prefix', value: q[`${field}.prefix`] as string });
    } else {
      const enc = (v: unknown) => (v === undefined ? undefined : kind === 'number' ? sortableNumber(Number(v)) : String(v));
      const from = enc(q[`${field}.from`]);
      const to = enc(q[`${field}.to`]);
      if (from !== undefined || to !== undefined) filters.push({ field, kind, op: 'range', ...(from !== undefined && { from }), ...(to !== undefined && { to }) });
    }
  }
  return {
    filters,
    sort: (q.sort as Sort | undefined) ?? 'catalogNumber',
    ...(typeof q.institutionCode === 'string' && { institutionCode: q.institutionCode }),
    ...(typeof q.collectionCode === 'string' && { collectionCode: q.collectionCode }),
  };
}

/**
 * The test of whether a record satisfies every condition of `q`, on its
 * stored text: only the fields the query names are read (record-json.ts
 * DataFieldReader), so a record the filters turn away is never decoded.
 */
export function matcher(q: SearchQuery): (text: string) => boolean {
  const scope: [string, string][] = [];
  if (q.institutionCode !== undefined) scope.push(['institutionCode', q.institutionCode]);
  if (q.collectionCode !== undefined) scope.push(['collectionCode', q.collectionCode]);
  const names = [...new Set([...scope.map(([f]) => f), ...q.filters.filter((f) => f.field !== 'status').map((f) => f.field)])];
  const reader = new DataFieldReader(names);
  const values: (string | undefined)[] = new Array(names.length);
  const scopeColumns = scope.map(([f, want]) => [names.indexOf(f), want] as const);
  const filterColumns = q.filters.map((f) => [f, names.indexOf(f.field)] as const); // -1: status, not a data field
  return (text) => {
    if (isDeletedText(text)) return false;
    reader.read(text, values);
    for (const [i, want] of scopeColumns) if (valueOfJson(values[i]) !== want) return false;
    for (const [f, i] of filterColumns) {
      const v = indexValue(f.kind, i < 0 ? statusOfText(text) : valueOfJson(values[i]));
      if (v === undefined || !admits(f, v)) return false;
    }
    return true;
  };
}

/** Whether the index value `v` satisfies filter `f`. */
function admits(f: Filter, v: string): boolean {
  if (f.op === 'range') return (f.from === undefined || v >= f.from) && (f.to === undefined || v <= f.to);
  return f.op === 'eq' ? v === f.value : v.startsWith(f.value);
}

/** A filter can drive the walk only if its index holds every value it admits (see UNINDEXED). */
function canDrive(f: Filter): boolean {
  const unindexed = UNINDEXED[f.field];
  return unindexed === undefined || !admits(f, unindexed);
}

interface Plan {
  /** Names the walk, so a cursor from another plan is refused. */
  name: string;
  walk: 'records' | 'index';
  range: { gt: Buffer; lt: Buffer };
  /** The range alone answers the query: counting needs no record reads. */
  covered: boolean;
  /** A record walk whose range is the whole query: a visited record matches unless it is deleted, and is not decoded to tell. */
  liveIsMatch?: boolean;
}

function indexPlan(f: Filter, q: SearchQuery): Plan {
  const range = f.op === 'range' ? keys.indexRange(f.field, f.from, f.to) : f.op === 'eq' ? keys.indexExact(f.field, f.value) : keys.indexPrefix(f.field, f.value);
  const covered = q.filters.length === 1 && q.institutionCode === undefined && q.collectionCode === undefined;
  return { name: `${f.field}.${f.op}`, walk: 'index', range, covered };
}

export function plan(q: SearchQuery): Plan {
  const drivers = q.filters.filter(canDrive);
  const eq = drivers.find((f) => f.op === 'eq');
  if (q.sort === 'eventDate') {
    const f = q.filters.find((x) => x.field === 'eventDate') ?? { field: 'eventDate', kind: 'date', op: 'range' };
    const p = indexPlan(f, q);
    return { ...p, covered: p.covered && q.filters.length === 1 };
  }
  if (q.sort === 'index') {
    const f = eq ?? drivers.find((x) => x.op === 'prefix') ?? drivers[0];
    if (f) return indexPlan(f, q);
  } else if (eq) {
    return indexPlan(eq, q); // entries of one value sort by record key: catalogue order
  }
  const scope = q.institutionCode === undefined ? [] : q.collectionCode === undefined ? [q.institutionCode] : [q.institutionCode, q.collectionCode];
  const liveIsMatch = q.filters.length === 0 && (q.collectionCode === undefined || q.institutionCode !== undefined);
  return { name: 'records', walk: 'records', range: keys.records(...scope), covered: false, liveIsMatch };
}

/** A matching record: its stored text (record-json.ts), decoded only where a format needs its fields. */
export class Match {
  #fields: RecordFields | undefined;
  constructor(
    readonly id: RecordId,
    readonly text: string,
  ) {}

  /** Its data and links (decoded once, from the text alone: less to parse than the whole record). */
  get fields(): RecordFields {
    return (this.#fields ??= decodeFields(this.text));
  }
}

export interface Visit {
  /** The driving key just visited, where a cursor resumes: a record walk's as text (store.recordChunks), an index walk's as bytes. */
  key: Buffer | string;
  /** Set when the record matches. */
  match?: Match;
}

/**
 * The visit of one record, a match if it is one (`matches` is null when every live record of the walk is one).
 * `idOf` reads the record's id from the key: only a match needs it.
 */
function visit<K extends Buffer | string>(key: K, idOf: (key: K) => RecordId, text: string | undefined, matches: ((text: string) => boolean) | null): Visit {
  if (text === undefined) return { key };
  const match = matches ? matches(text) : !isDeletedText(text);
  return match ? { key, match: new Match(idOf(key), text) } : { key };
}

/**
 * Walk a plan from after `from`, yielding the visited entries in order a chunk at a time (matches carry their record).
 * An index walk reads its keys `chunk` at a time and their records `reads` at a time, the next part's read started
 * before this part is checked: a page that other filters thin out reads few records past its last match, and its
 * reads (LevelDB's threads) overlap its checks (the main thread). `whole`: the caller reads the walk to its end, so a
 * record walk reads its next chunk ahead too (a page would read one it mostly does not need).
 */
export async function* walkChunks(store: RecodeStore, q: SearchQuery, p: Plan, from?: Buffer, chunk = 256, reads = chunk, whole = false): AsyncGenerator<Visit[]> {
  const range = from && Buffer.compare(from, p.range.gt) > 0 ? { gt: from, lt: p.range.lt } : p.range;
  const matches = p.liveIsMatch ? null : matcher(q);
  if (p.walk === 'records') {
    for await (const got of store.recordChunks(range, chunk, whole)) yield got.map(([key, text]) => visit(key, keys.recordIdOf, text, matches));
    return;
  }
  for await (const got of store.keyChunks(range, chunk)) {
    const recordKeys = got.map(keys.recordOfIndex);
    const read = (i: number) => {
      const texts = store.getManyText(recordKeys.slice(i, i + reads));
      texts.catch(() => {}); // awaited below, unless the caller stops first
      return texts;
    };
    const inFlight = [];
    for (let i = 0; i < got.length && inFlight.length < READS_AHEAD; i += reads) inFlight.push(read(i));
    for (let i = 0; i < got.length; i += reads) {
      const texts = await inFlight.shift()!;
      const ahead = i + READS_AHEAD * reads;
      if (ahead < got.length) inFlight.push(read(ahead));
      yield texts.map((text, j) => visit(got[i + j]!, keys.indexRecordOf, text, matches));
    }
  }
}

/** Two parts in flight: a page's reads overlap each other (LevelDB reads each on a thread of its own) and its checks. */
const READS_AHEAD = 2;

/** The same walk, one entry at a time. */
export async function* walk(store: RecodeStore, q: SearchQuery, p: Plan, from?: Buffer, chunk = 256, reads = chunk): AsyncGenerator<Visit> {
  for await (const visits of walkChunks(store, q, p, from, chunk, reads)) yield* visits;
}

/** Every match of `q`, in order, a chunk at a time (exports: no per-record async step, never more than a chunk held). */
export async function* matchChunks(store: RecodeStore, q: SearchQuery): AsyncGenerator<Match[]> {
  for await (const visits of walkChunks(store, q, plan(q), undefined, 1000, 1000, true)) {
    const hits: Match[] = [];
    for (const v of visits) if (v.match) hits.push(v.match);
    if (hits.length > 0) yield hits;
  }
}

/** How many records match (keys only when the plan's range is the whole answer). */
export async function count(store: RecodeStore, q: SearchQuery): Promise<number> {
  const p = plan(q);
  let n = 0;
  if (p.walk === 'records' && q.filters.length === 0) {
    // Every live record of the scope: the collection counts, kept in the records' own batches.
    for (const c of store.collections()) if ((q.institutionCode ?? c.institutionCode) === c.institutionCode && (q.collectionCode ?? c.collectionCode) === c.collectionCode) n += c.records;
    return n;
  }
  if (p.covered) {
    for await (const chunk of store.keyChunks(p.range, 1024)) n += chunk.length;
    return n;
  }
  const only = q.filters.length === 1 ? q.filters[0]! : undefined;
  if (only?.field === 'status' && only.op === 'eq' && only.value === UNINDEXED.status && q.collectionCode === undefined) {
    // Every live record has one state, and the status index holds each one not `registered`: the rest of the scope is.
    for (const c of store.collections()) if ((q.institutionCode ?? c.institutionCode) === c.institutionCode) n += c.records;
    for await (const chunk of store.keyChunks(keys.indexRange('status'), 1024)) {
      for (const k of chunk) if (q.institutionCode === undefined || keys.indexRecordOf(k)[0] === q.institutionCode) n--;
    }
    return n;
  }
  for await (const visits of walkChunks(store, q, p, undefined, 1000, 1000, true)) for (const v of visits) if (v.match) n++;
  return n;
}

export interface Page {
  items: Match[];
  /** Present while more may follow. */
  next?: string;
  /** Entries visited: a page stops early at the scan budget, with a cursor. */
  scanned: number;
}

/**
 * Records a sparse page reads at a time. Small parts: a page that fills reads at most READS_AHEAD parts it does
 * not check (a page of 100 where 1 in 6 records match, as in the bench's exact + range query, reads ~770, not 1,000).
 */
const PAGE_READS = 64;

/** One page: up to `limit` matches, visiting at most `budget` entries. */
export async function page(store: RecodeStore, q: SearchQuery, limit: number, cursor: string | undefined, budget = 20_000): Promise<Page> {
  const p = plan(q);
  let from: Buffer | undefined;
  if (cursor !== undefined) {
    let c: { p?: string; k?: string };
    try {
      c = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { p?: string; k?: string };
    } catch {
      throw new RecodeError('INVALID_CURSOR');
    }
    if (c.p !== p.name || typeof c.k !== 'string') throw new RecodeError('INVALID_CURSOR', 'the cursor belongs to a different query');
    from = Buffer.from(c.k, 'hex');
  }
  const items: Page['items'] = [];
  let scanned = 0;
  let last: Buffer | string | undefined;
  let more = false;
  // A driving range that is the whole answer is read a page at a time; one that other filters thin out, in larger steps (fewer trips to LevelDB).
  const dense = p.covered || (p.walk === 'records' && q.filters.length === 0);
  const chunk = dense ? Math.min(limit + 1, 256) : 1000;
  for await (const v of walk(store, q, p, from, chunk, dense ? chunk : PAGE_READS)) {
    if (items.length === limit || scanned === budget) {
      more = true;
      break;
    }
    scanned++;
    last = v.key;
    if (v.match) items.push(v.match);
  }
  const next = more && last ? Buffer.from(JSON.stringify({ p: p.name, k: Buffer.from(last).toString('hex') })).toString('base64url') : undefined;
  return { items, scanned, ...(next && { next }) };
}
