// A CSV export row straight from a record's stored text (record-json.ts):
// the text's data and links are written as UTF-8 into a scratch buffer once
// and turned into the row in one pass over those bytes, without parsing the
// record or making a string per cell. The stored text is JSON.stringify's
// output, so a value's JSON text is what export's cell() writes for it:
// a string without escapes is its bytes between the quotes, a number or a
// boolean its text, an object or array its JSON; only a string holding an
// escape is decoded (rare). A record whose data fields are not stored in
// schema order (a later field before an earlier one) is written by the
// general path, `slowRow`. JSON's structural characters are ASCII and no
// byte of a multi-byte UTF-8 character is below 0x80, so scanning bytes for
// them is safe.
import { csvField } from '../csv.js';
import { BACKSLASH, CLOSE_BRACE, CLOSE_BRACKET, COMMA, OPEN_BRACE, OPEN_BRACKET, QUOTE } from '../record-json.js';
import type { Out } from './out.js';

const N = 0x6e; // null
const MEDIA = Buffer.from(',"media":');

export class CsvRowWriter {
  private readonly column: Map<string, number>;
  /** The last record's data field names in stored order (bytes as stored: JSON-escaped) and the column of each (-1: not in the schema). */
  private readonly names: Uint8Array[] = [];
  private readonly columns: number[] = [];
  private scratch = Buffer.allocUnsafe(64 * 1024);

  /** `slowRow` writes a record's whole row as a string (export/formats.ts: the reference way). */
  constructor(
    private readonly fields: readonly string[],
    private readonly slowRow: (text: string) => string,
  ) {
    this.column = new Map(fields.map((n, i) => [n, i]));
  }

  /** Appends the record's row (CRLF-terminated) to `out`. */
  write(text: string, out: Out): void {
    // From the data object's '{' to the end: `{…},"media":[…]}`.
    const from = text.indexOf(',"data":') + 8;
    if (this.scratch.length < (text.length - from) * 3) this.scratch = Buffer.allocUnsafe((text.length - from) * 3);
    const b = this.scratch;
    const n = b.write(text.slice(from), 0);
    // Each byte becomes at most two (a doubled quote); each cell may add two quotes and a comma.
    out.room(n * 2 + (this.fields.length + 2) * 3);
    const o = this.row(b, n, out);
    if (o < 0) out.text(this.slowRow(text));
    else out.pos = o;
  }

  /** Writes the row at out.pos; the end of it, or -1 (nothing kept) when the fields are not in schema order. */
  private row(b: Buffer, n: number, out: Out): number {
    const ob = out.buf;
    let o = out.pos;
    let done = 0; // columns written, each followed by its comma
    let i = 1; // after the data's '{'
    if (b[1] !== CLOSE_BRACE) {
      for (let k = 0; ; k++) {
        // b[i] is the quote opening a field name: the same name as the last record's k-th field is recognised without a lookup.
        let col: number;
        let nameEnd: number;
        const expected = this.names[k];
        if (expected !== undefined && sameName(b, i + 1, expected)) {
          col = this.columns[k]!;
          nameEnd = i + 1 + expected.length;
        } else {
          nameEnd = stringEnd(b, i);
          const name = b.toString('utf8', i + 1, nameEnd);
          col = this.column.get(name.includes('\\') ? (JSON.parse(`"${name}"`) as string) : name) ?? -1;
          this.names[k] = Uint8Array.prototype.slice.call(b, i + 1, nameEnd);
          this.columns[k] = col;
        }
        const s = nameEnd + 2; // after '":'
        let end: number;
        if (col < 0) {
          end = valueEnd(b, s); // not a schema field: not exported
        } else {
          if (col < done) return -1; // out of schema order
          while (done < col) {
            ob[o++] = COMMA;
            done++;
          }
          const c = b[s];
          if (c === QUOTE) {
            o = stringCell(b, s, ob, o);
            end = cellEnd;
          } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
            end = nestedEnd(b, s);
            o = jsonCell(b, s, end, ob, o);
          } else {
            end = scalarEnd(b, s);
            if (c !== N) for (let j = s; j < end; j++) ob[o++] = b[j]!; // a number, true or false: its text; null: empty
          }
          ob[o++] = COMMA;
          done++;
        }
        if (b[end] === CLOSE_BRACE) {
          i = end;
          break;
        }
        i = end + 1; // after ','
      }
    }
    // b[i] closes the data; the links follow: `,"media":[…]}`.
    for (let j = 0; j < MEDIA.length; j++) if (b[i + 1 + j] !== MEDIA[j]) return -1;
    while (done < this.fields.length) {
      ob[o++] = COMMA;
      done++;
    }
    const m = i + 1 + MEDIA.length;
    if (b[m + 1] !== CLOSE_BRACKET) o = jsonCell(b, m, n - 1, ob, o); // no links: empty
    ob[o++] = 0x0d;
    ob[o++] = 0x0a;
    return o;
  }
}

/** Whether b holds `name` (stored bytes) at `at`, followed by its closing quote. */
function sameName(b: Buffer, at: number, name: Uint8Array): boolean {
  for (let j = 0; j < name.length; j++) if (b[at + j] !== name[j]) return false;
  return b[at + name.length] === QUOTE;
}

/** Just after the string stringCell() last read (a second result, without an object for it). */
let cellEnd = 0;

/**
 * The cell of the JSON string opening at `s`, copied as it is scanned: its bytes between the quotes, in quotes if it
 * holds a comma (a quote or a line break in it would be an escape). A string with an escape is decoded and written
 * the reference way.
 */
function stringCell(b: Buffer, s: number, ob: Buffer, o: number): number {
  const start = o;
  let comma = false;
  let j = s + 1;
  for (let c = b[j]!; c !== QUOTE; c = b[++j]!) {
    if (c === BACKSLASH) {
      cellEnd = stringEnd(b, s) + 1;
      return start + ob.write(csvField(JSON.parse(b.toString('utf8', s, cellEnd)) as string), start);
    }
    if (c === COMMA) comma = true;
    ob[o++] = c;
  }
  cellEnd = j + 1;
  if (!comma) return o;
  ob.copyWithin(start + 1, start, o);
  ob[start] = QUOTE;
  ob[o + 1] = QUOTE;
  return o + 2;
}

/** The cell of the JSON object or array b[s, end): its text, quoted (quotes doubled) if it holds a quote or a comma. */
function jsonCell(b: Buffer, s: number, end: number, ob: Buffer, o: number): number {
  let quote = false;
  for (let j = s; j < end; j++) {
    const c = b[j];
    if (c === QUOTE || c === COMMA) {
      quote = true;
      break;
    }
  }
  if (!quote) {
    for (let j = s; j < end; j++) ob[o++] = b[j]!;
    return o;
  }
  ob[o++] = QUOTE;
  for (let j = s; j < end; j++) {
    const c = b[j]!;
    if (c === QUOTE) ob[o++] = QUOTE;
    ob[o++] = c;
  }
  ob[o++] = QUOTE;
  return o;
}

/** The index of the quote closing the JSON string that opens at `open`. */
function stringEnd(b: Buffer, open: number): number {
  for (let j = open + 1; ; j++) {
    const c = b[j];
    if (c === QUOTE) return j;
    if (c === BACKSLASH) j++; // the escaped character, a quote or a backslash included
  }
}

/** Just after the object or array opening at `open`. */
function nestedEnd(b: Buffer, open: number): number {
  let depth = 0;
  for (let j = open; ; j++) {
    const c = b[j];
    if (c === QUOTE) j = stringEnd(b, j);
    else if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
    else if ((c === CLOSE_BRACE || c === CLOSE_BRACKET) && --depth === 0) return j + 1;
  }
}

/** Just after the number, true, false or null starting at `s`. */
function scalarEnd(b: Buffer, s: number): number {
  let j = s;
  for (let c = b[j]; c !== COMMA && c !== CLOSE_BRACE; c = b[++j]);
  return j;
}

/** Just after the value starting at `s`. */
function valueEnd(b: Buffer, s: number): number {
  const c = b[s];
  return c === QUOTE ? stringEnd(b, s) + 1 : c === OPEN_BRACE || c === OPEN_BRACKET ? nestedEnd(b, s) : scalarEnd(b, s);
}
