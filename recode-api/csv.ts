// CSV (RFC 4180) in both directions, streaming: fields quoted only when they
// must be; the parser keeps at most one row (bounded) in memory.

export function csvField(v: string): string {
  return /[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v;
}

export function csvRow(fields: readonly string[]): string {
  return `${fields.map(csvField).join(',')}\r\n`;
}

export class CsvRowTooLong extends Error {}

/** Rows of a CSV byte stream, each with the line number it starts on. */
export async function* parseCsv(source: AsyncIterable<Buffer | string> | Iterable<Buffer | string>, maxRowChars = 1 << 20): AsyncGenerator<{ line: number; fields: string[] }> {
  for await (const rows of parseCsvChunks(source, maxRowChars)) yield* rows;
}

/** The same rows, as the arrays each input chunk completes (bulk import: no async step per row). */
export async function* parseCsvChunks(source: AsyncIterable<Buffer | string> | Iterable<Buffer | string>, maxRowChars = 1 << 20): AsyncGenerator<{ line: number; fields: string[] }[]> {
  const decoder = new TextDecoder('utf-8');
  let fields: string[] = [];
  let field = '';
  let quoted = false; // inside a quoted field
  let afterQuote = false; // just read a quote inside a quoted field
  let line = 1;
  let rowLine = 1;
  let rowChars = 0;
  let any = false;
  const endRow = () => {
    fields.push(field);
    const row = { line: rowLine, fields };
    fields = [];
    field = '';
    rowChars = 0;
    any = false;
    return row;
  };
  const take = function* (text: string): Generator<{ line: number; fields: string[] }> {
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!;
      if (++rowChars > maxRowChars) throw new CsvRowTooLong(`the row starting on line ${rowLine} is longer than ${maxRowChars} characters`);
      if (quoted) {
        if (afterQuote) {
          afterQuote = false;
          if (c === '"') {
            field += '"';
            continue;
          }
          quoted = false; // the quote closed the field; fall through to handle c
        } else if (c === '"') {
          afterQuote = true;
          continue;
        } else {
          if (c === '\n') line++;
          field += c;
          continue;
        }
      }
      if (c === '"' && field === '') {
        quoted = true;
        any = true;
      } else if (c === ',') {
        fields.push(field);
        field = '';
        any = true;
      } else if (c === '\n') {
        line++;
        if (any || field !== '' || fields.length > 0) yield endRow();
        rowLine = line;
        rowChars = 0;
      } else if (c !== '\r') {
        field += c;
        any = true;
      }
    }
  };
  for await (const chunk of source) {
    const rows = [...take(typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }))];
    if (rows.length > 0) yield rows;
  }
  const rows = [...take(decoder.decode())];
  if (afterQuote) quoted = false;
  if (any || field !== '' || fields.length > 0) rows.push(endRow());
  if (rows.length > 0) yield rows;
}

export interface Line {
  line: number;
  text?: string;
  tooLong?: boolean;
}

/**
 * Lines of a byte stream (LF or CRLF), each with its number, as the arrays
 * each input chunk completes; a line over `maxBytes` is reported, not held.
 */
export async function* splitLines(source: AsyncIterable<Buffer>, maxBytes = 1 << 20): AsyncGenerator<Line[]> {
  let parts: Buffer[] = [];
  let held = 0;
  let tooLong = false;
  let line = 0;
  const emit = (last: Buffer): Line => {
    line++;
    if (tooLong) {
      tooLong = false;
      parts = [];
      held = 0;
      return { line, tooLong: true };
    }
    let buf = parts.length === 0 ? last : Buffer.concat([...parts, last]);
    parts = [];
    held = 0;
    if (buf[buf.length - 1] === 0x0d) buf = buf.subarray(0, buf.length - 1);
    return { line, text: buf.toString('utf8') };
  };
  for await (const chunk of source) {
    let start = 0;
    const lines: Line[] = [];
    for (let nl = chunk.indexOf(0x0a); nl >= 0; nl = chunk.indexOf(0x0a, start)) {
      lines.push(emit(chunk.subarray(start, nl)));
      start = nl + 1;
    }
    if (lines.length > 0) yield lines;
    const rest = chunk.subarray(start);
    if (rest.length > 0 && !tooLong) {
      held += rest.length;
      if (held > maxBytes) {
        tooLong = true;
        parts = [];
      } else parts.push(Buffer.from(rest));
    }
  }
  if (parts.length > 0 || tooLong) yield [emit(Buffer.alloc(0))];
}
