// How a record is stored: the JSON text of its API view without the id (the
// id is the key). An NDJSON export line is then the stored text with the id
// put in front, and a search or export that needs no field of the record
// never parses it.
import type { RecordId } from './keys.js';
import type { StoredRecord } from './store.js';

/** An epoch-milliseconds time as ISO 8601; records written in one batch share it, so the last one is kept. */
let lastMs = NaN;
let lastIso = '';
function iso(ms: number): string {
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

/** The inverse of iso(), kept the same way. */
let lastParsedIso = '';
let lastParsedMs = NaN;
function ms(isoText: string): number {
  if (isoText !== lastParsedIso) {
    lastParsedIso = isoText;
    lastParsedMs = Date.parse(isoText);
  }
  return lastParsedMs;
}

/** A record's id as JSON text. */
export const idText = (id: RecordId) => JSON.stringify(id.join('/'));

/** The stored text of a record, written out field by field (the field order is the view's). */
export function encodeRecord(rec: StoredRecord): string {
  const S = JSON.stringify;
  return (
    `{"version":${rec.version},"status":${S(rec.status)}${rec.loan ? `,"loan":${S(rec.loan)}` : ''}` +
    `,"created":"${iso(rec.created)}","createdBy":${S(rec.createdBy)},"updated":"${iso(rec.updated)}","updatedBy":${S(rec.updatedBy)}` +
    `${rec.deleted ? `,"deleted":${S({ ...rec.deleted, at: iso(rec.deleted.at) })}` : ''},"data":${S(rec.data)},"media":${S(rec.media)}}`
  );
}

type StoredView = Omit<StoredRecord, 'created' | 'updated' | 'deleted'> & { created: string; updated: string; deleted?: { at: string; by: string; reason: string } };

export function decodeRecord(text: string): StoredRecord {
  const v = JSON.parse(text) as StoredView;
  const rec = v as unknown as StoredRecord;
  rec.created = ms(v.created);
  rec.updated = ms(v.updated);
  if (v.deleted) rec.deleted = { ...v.deleted, at: ms(v.deleted.at) };
  return rec;
}

/**
 * Whether stored text is a soft-deleted record, without parsing it. The
 * top-level `"deleted"` comes before `"data"`; `,"` never occurs inside a
 * JSON string (a quote there is escaped), and the fields before `data`
 * (loan) have no key of that name.
 */
export function isDeletedText(text: string): boolean {
  // Looked for backwards from `data`: only the short part before it is read.
  return text.lastIndexOf(',"deleted":{', text.indexOf(',"data":')) >= 0;
}

/** What a row of fields needs from a record (CSV, Darwin Core Archive). */
export type RecordFields = Pick<StoredRecord, 'data' | 'media'>;

/**
 * The data and links of stored text, without decoding the rest. The first
 * top-level `,"data":` and the last `,"media":` (the final field) delimit
 * them: `,"` never occurs inside a JSON string, the fields before `data`
 * have no such key, and the links after it hold only strings.
 */
export function decodeFields(text: string): RecordFields {
  const data = text.indexOf(',"data":');
  const media = text.lastIndexOf(',"media":');
  return { data: JSON.parse(text.slice(data + 8, media)) as StoredRecord['data'], media: JSON.parse(text.slice(media + 9, -1)) as StoredRecord['media'] };
}

/**
 * Reads chosen top-level fields of records' data as the JSON text of their
 * values, from the stored text without parsing it (a CSV row or a search
 * filter needs only a few values' text; a parse would build every object and
 * string first). The stored text is JSON.stringify's output, so a value's
 * text is how JSON.stringify writes that value again. Records of one import
 * store their fields in one order: the reader remembers the names of the
 * last record and checks each name against the one in its place before it
 * cuts a new one out.
 */
export class DataFieldReader {
  private readonly column: Map<string, number>;
  /** The last record's field names in stored order (as stored: JSON-escaped), and the column of each (-1: not chosen). */
  private readonly lastNames: string[] = [];
  private readonly lastColumns: number[] = [];

  constructor(private readonly names: readonly string[]) {
    this.column = new Map(names.map((n, i) => [n, i]));
  }

  /** Sets out[i] to the JSON text of field names[i] of the record's data, undefined where it has none. */
  read(text: string, out: (string | undefined)[]): void {
    out.fill(undefined, 0, this.names.length);
    let left = this.names.length; // chosen fields not yet found: the rest of the record is skipped once all are
    let i = text.indexOf(',"data":') + 9; // after the data's '{'
    if (left === 0 || text.charCodeAt(i) === CLOSE_BRACE) return;
    for (let k = 0; ; k++) {
      const expected = this.lastNames[k];
      let col: number;
      let nameEnd: number;
      if (expected !== undefined && text.startsWith(expected, i + 1) && text.charCodeAt(i + 1 + expected.length) === QUOTE) {
        col = this.lastColumns[k]!;
        nameEnd = i + 1 + expected.length;
      } else {
        nameEnd = stringEnd(text, i);
        const name = text.slice(i + 1, nameEnd);
        col = this.column.get(name.includes('\\') ? (JSON.parse(`"${name}"`) as string) : name) ?? -1;
        this.lastNames[k] = name;
        this.lastColumns[k] = col;
      }
      const start = nameEnd + 2; // after '":'
      const c = text.charCodeAt(start);
      const end = c === QUOTE ? stringEnd(text, start) + 1 : c === OPEN_BRACE || c === OPEN_BRACKET ? nestedEnd(text, start) : scalarEnd(text, start);
      if (col >= 0) {
        out[col] = text.slice(start, end);
        if (--left === 0) return;
      }
      if (text.charCodeAt(end) === CLOSE_BRACE) return;
      i = end + 1; // after ','
    }
  }
}

/** JSON's structural characters, scanned for in stored text here and in its bytes (export/csv-row.ts). */
export const QUOTE = 0x22;
export const BACKSLASH = 0x5c;
export const OPEN_BRACE = 0x7b;
export const CLOSE_BRACE = 0x7d;
export const OPEN_BRACKET = 0x5b;
export const CLOSE_BRACKET = 0x5d;
export const COMMA = 0x2c;

/** The index of the quote that closes the JSON string opening at `open`. */
function stringEnd(text: string, open: number): number {
  let q = text.indexOf('"', open + 1);
  for (;;) {
    let backslashes = 0;
    while (text.charCodeAt(q - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return q;
    q = text.indexOf('"', q + 1);
  }
}

/** Just after the object or array opening at `open`. */
function nestedEnd(text: string, open: number): number {
  let depth = 0;
  for (let i = open; ; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) i = stringEnd(text, i);
    else if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
    else if ((c === CLOSE_BRACE || c === CLOSE_BRACKET) && --depth === 0) return i + 1;
  }
}

/** Just after the number, true, false or null starting at `start`. */
function scalarEnd(text: string, start: number): number {
  let i = start;
  for (let c = text.charCodeAt(i); c !== COMMA && c !== CLOSE_BRACE; c = text.charCodeAt(++i));
  return i;
}

/** The value of a JSON text from DataFieldReader (a string without escapes is cut out, not parsed). */
export function valueOfJson(json: string | undefined): unknown {
  if (json === undefined) return undefined;
  return json.charCodeAt(0) === QUOTE && !json.includes('\\') ? json.slice(1, -1) : JSON.parse(json);
}

/** A record's workflow state, from its stored text (the field after `version`; a state's name holds no escape). */
export function statusOfText(text: string): string {
  const start = text.indexOf(',"status":"') + 11;
  return text.slice(start, text.indexOf('"', start));
}

/** The JSON text of a record's links, from its stored text (the last field). */
export function mediaJsonOf(text: string): string {
  return text.slice(text.lastIndexOf(',"media":') + 9, -1);
}

/** The record as the API shows it (JSON.parse of recordLine). */
export function recordView(id: RecordId, rec: StoredRecord) {
  return {
    id: id.join('/'),
    version: rec.version,
    status: rec.status,
    ...(rec.loan && { loan: rec.loan }),
    created: iso(rec.created),
    createdBy: rec.createdBy,
    updated: iso(rec.updated),
    updatedBy: rec.updatedBy,
    ...(rec.deleted && { deleted: { ...rec.deleted, at: iso(rec.deleted.at) } }),
    data: rec.data,
    media: rec.media,
  };
}

/** The view as JSON text, from the stored text: the id goes in front. */
export function lineOfText(id: RecordId, text: string): string {
  return `{"id":${idText(id)},${text.slice(1)}`;
}

/** JSON.stringify(recordView(id, rec)). */
export function recordLine(id: RecordId, rec: StoredRecord): string {
  return lineOfText(id, encodeRecord(rec));
}
