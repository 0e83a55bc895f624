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

const idText = (id: RecordId) => JSON.stringify(id.join('/'));

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
