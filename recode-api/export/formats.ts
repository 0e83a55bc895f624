// Export formats, each a stream of bytes over a stream of records: NDJSON
// (the record as the API shows it, links unresolved), CSV (schema fields +
// a `media` JSON column: what import reads back), and a Darwin Core Archive
// (meta.xml, occurrence.txt, and an Audubon Core multimedia extension whose
// rows point at the stored files). Output is gathered into ~256 KiB chunks.
import { randomUUID } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MEDIA_COLUMN } from '../bulk.js';
import { csvField, csvRow } from '../csv.js';
import { DataFieldReader, idText, mediaJsonOf, valueOfJson } from '../record-json.js';
import type { CollectionSchema } from '../schema.js';
import type { Match } from '../search.js';
import { idString, type MediaLink } from '../store.js';
import { CsvRowWriter } from './csv-row.js';
import { CHUNK, Out } from './out.js';
import { zip } from './zip.js';

export type ExportFormat = 'ndjson' | 'csv' | 'dwca';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['ndjson', 'csv', 'dwca'];
export const CONTENT_TYPES: Record<ExportFormat, string> = { ndjson: 'application/x-ndjson', csv: 'text/csv; charset=utf-8', dwca: 'application/zip' };

/** Records in export order, a chunk at a time. */
type Rows = AsyncIterable<Match[]>;

/** The bytes of each record (`write` appends them to `out`), handed on in ~CHUNK pieces: the caller counts bytes, the socket writes them. */
async function* written(rows: Rows, write: (m: Match, out: Out) => void, header = ''): AsyncGenerator<Buffer> {
  const out = new Out();
  out.text(header);
  for await (const chunk of rows) {
    for (const m of chunk) {
      write(m, out);
      if (out.full) yield out.take();
    }
  }
  if (out.pos > 0) yield out.take();
}

/** The same for a line made as a string (Darwin Core Archive). */
const gathered = (rows: Rows, line: (m: Match) => string, header = '') => written(rows, (m, out) => out.text(line(m)), header);

export function ndjson(rows: Rows): AsyncGenerator<Buffer> {
  // The stored text is the view without its id: no record is decoded. The line is record-json.ts lineOfText's,
  // written without making it: `{"id":…`, then the stored text, whose opening '{' becomes the comma after the id.
  return written(rows, (m, out) => {
    const head = `{"id":${idText(m.id)}`;
    out.room((head.length + m.text.length) * 3 + 1);
    const at = out.pos + out.buf.write(head, out.pos);
    out.pos = at + out.buf.write(m.text, at);
    out.buf[at] = 0x2c; // ','
    out.buf[out.pos++] = 0x0a; // '\n'
  });
}

const cell = (v: unknown) => (v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));

/**
 * A CSV cell from a value's JSON text (record-json.ts DataFieldReader): what
 * cell() makes of the parsed value. A string is unescaped (parsed only when
 * it holds an escape); a number, true, false, an object or an array is its
 * JSON text already; null is empty.
 */
function cellOfJson(json: string): string {
  if (json.charCodeAt(0) === 0x22) return valueOfJson(json) as string;
  return json === 'null' ? '' : json;
}

export function csv(rows: Rows, schema: CollectionSchema): AsyncGenerator<Buffer> {
  const fields = schema.fields;
  const reader = new DataFieldReader(fields);
  const cells: (string | undefined)[] = new Array(fields.length + 1);
  // The general row, from the values' JSON texts: for records whose fields are not stored in schema order.
  const slowRow = (text: string) => {
    reader.read(text, cells);
    for (let i = 0; i < fields.length; i++) {
      const json = cells[i];
      cells[i] = json === undefined ? '' : csvField(cellOfJson(json));
    }
    const media = mediaJsonOf(text);
    cells[fields.length] = media === '[]' ? '' : csvField(media);
    return `${cells.join(',')}\r\n`;
  };
  // Usually one pass over the stored text's bytes straight into the output (export/csv-row.ts).
  const rowWriter = new CsvRowWriter(fields, slowRow);
  return written(rows, (m, out) => rowWriter.write(m.text, out), csvRow([...fields, MEDIA_COLUMN]));
}

// Darwin Core Archive -------------------------------------------------------

const DWC = 'http://rs.tdwg.org/dwc/terms/';
const MULTIMEDIA_TERMS = [
  'http://rs.tdwg.org/ac/terms/accessURI',
  'http://purl.org/dc/terms/identifier',
  'http://purl.org/dc/terms/type',
  'http://rs.tdwg.org/ac/terms/subtypeLiteral',
] as const;
const DCMI_TYPE: Record<string, string> = { image: 'StillImage', label: 'StillImage', '3d': 'InteractiveResource', video: 'MovingImage', audio: 'Sound' };

const xmlEscape = (s: string) => s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
/** DwC-A text files here are tab-separated without quoting: tabs and line breaks inside values become spaces. */
const tsv = (v: unknown) => cell(v).replace(/[\t\r\n]+/g, ' ');

export function metaXml(fields: readonly string[]): string {
  const file = (rowType: string, location: string, idTag: string, terms: readonly string[]) =>
    `  <${rowType === 'core' ? 'core' : 'extension'} encoding="UTF-8" fieldsTerminatedBy="\\t" linesTerminatedBy="\\n" fieldsEnclosedBy="" ignoreHeaderLines="1" rowType="${xmlEscape(
      location === 'occurrence.txt' ? `${DWC}Occurrence` : 'http://rs.tdwg.org/ac/terms/Multimedia',
    )}">\n` +
    `    <files><location>${location}</location></files>\n` +
    `    <${idTag} index="0"/>\n` +
    terms.map((t, i) => `    <field index="${i + 1}" term="${xmlEscape(t)}"/>\n`).join('') +
    `  </${rowType === 'core' ? 'core' : 'extension'}>\n`;
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    '<archive xmlns="http://rs.tdwg.org/dwc/text/">\n' +
    file('core', 'occurrence.txt', 'id', fields.map((f) => `${DWC}${f}`)) +
    file('extension', 'multimedia.txt', 'coreid', MULTIMEDIA_TERMS) +
    '</archive>\n'
  );
}

/**
 * A Darwin Core Archive. Records are read once: occurrence rows stream into
 * the zip while multimedia rows go to a temporary file that becomes the
 * second entry, so both files describe exactly the same records.
 */
export async function* dwca(rows: Rows, schema: CollectionSchema, mediaUrl: (m: MediaLink) => string): AsyncGenerator<Buffer> {
  const fields = schema.fields;
  const tmp = join(tmpdir(), `recode-multimedia-${randomUUID()}.txt`);
  const fh = await open(tmp, 'w+', 0o600);
  try {
    let pending = `coreid\t${MULTIMEDIA_TERMS.map((t) => t.slice(t.lastIndexOf('/') + 1)).join('\t')}\n`;
    // Occurrence rows go into the zip; each chunk's multimedia rows go to the temporary file on the way.
    async function* withMedia(): AsyncGenerator<Match[]> {
      for await (const chunk of rows) {
        for (const { id, fields } of chunk) {
          for (const m of fields.media) pending += `${tsv(idString(id))}\t${tsv(mediaUrl(m))}\t${tsv(`s3://${m.bucket}/${m.key}`)}\t${DCMI_TYPE[m.role] ?? 'StillImage'}\t${tsv(m.role)}\n`;
        }
        if (pending.length >= CHUNK) {
          await fh.write(pending);
          pending = '';
        }
        yield chunk;
      }
      await fh.write(pending);
    }
    const occurrences = gathered(withMedia(), ({ id, fields: { data } }) => `${tsv(idString(id))}\t${fields.map((f) => tsv(data[f])).join('\t')}\n`, `id\t${fields.join('\t')}\n`);
    async function* multimedia(): AsyncGenerator<Buffer> {
      yield* fh.createReadStream({ start: 0, autoClose: false }) as AsyncIterable<Buffer>;
    }
    yield* zip([
      { name: 'meta.xml', data: [metaXml(fields)] },
      { name: 'occurrence.txt', data: occurrences },
      { name: 'multimedia.txt', data: multimedia() },
    ]);
  } finally {
    await fh.close();
    await rm(tmp, { force: true });
  }
}
