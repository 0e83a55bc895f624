// The pieces under the API, each checked against an independent reference:
// the error catalogue, CSV both ways, Darwin Core dates, the sortable number
// encoding the indexes use, the export's NDJSON line writer, the zip
// writer read back by the real unzip, the store's download counts, and
// data fields and CSV rows read from stored text without a parse.
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { csvField, csvRow, parseCsv } from '../../recode-api/csv.js';
import { RECODE_ERRORS } from '../../recode-api/errors.js';
import { DataFieldReader, decodeFields, decodeRecord, encodeRecord, isDeletedText, recordLine, recordView } from '../../recode-api/record-json.js';
import { csv, ndjson } from '../../recode-api/export/formats.js';
import { Match } from '../../recode-api/search.js';
import { zip } from '../../recode-api/export/zip.js';
import { CollectionSchema, DARWIN_CORE_SCHEMA, dateStart, isDwcDate, sortableNumber } from '../../recode-api/schema.js';
import { Level } from 'level';
import { RecodeStore } from '../../recode-api/store.js';
import { keys } from '../../recode-api/keys.js';
import { removeDir, tempDir } from '../helpers/gateway.js';
import { rng } from './helpers.js';

const run = promisify(execFile);

t.test('error catalogue: unique, documented, problem statuses', async (t) => {
  const codes = Object.keys(RECODE_ERRORS);
  t.equal(new Set(codes).size, codes.length);
  for (const [code, e] of Object.entries(RECODE_ERRORS)) {
    t.ok(e.doc.length > 10 && e.title.length > 3, `${code} documented`);
    t.ok(e.status >= 400 && e.status < 600, `${code} status`);
  }
});

t.test('CSV: quoting, embedded line breaks, CRLF, split chunks; round trip', async (t) => {
  const text = 'a,b,c\r\n1,"x, y","he said ""hi"""\r\n2,"line\nbreak",\n3,,last';
  const chunks = [...text].map((c) => Buffer.from(c)); // one character per chunk
  const rows = [];
  for await (const r of parseCsv(chunks)) rows.push(r);
  t.same(
    rows.map((r) => r.fields),
    [
      ['a', 'b', 'c'],
      ['1', 'x, y', 'he said "hi"'],
      ['2', 'line\nbreak', ''],
      ['3', '', 'last'],
    ],
  );
  t.same(
    rows.map((r) => r.line),
    [1, 2, 3, 5],
    'each row knows the line it starts on',
  );
  const r = rng(5);
  const alphabet = ['a', ',', '"', '\n', '\r\n', 'é', '🦋', ' ', '\t'];
  const table = Array.from({ length: 200 }, () => Array.from({ length: 4 }, () => Array.from({ length: Math.floor(r() * 6) }, () => alphabet[Math.floor(r() * alphabet.length)]).join('')));
  const back = [];
  for await (const row of parseCsv([Buffer.from(table.map(csvRow).join(''))])) back.push(row.fields);
  t.same(back, table, 'what csvRow writes, parseCsv reads back');
});

t.test('Darwin Core dates', async (t) => {
  for (const ok of ['2001', '2001-05', '2001-05-03', '2000-02-29', '2001-05-03T10:20', '2001-05-03T10:20:30Z', '2001-05-03T10:20:30+02:00', '1999/2001', '2001-05-01/2001-05-31']) t.ok(isDwcDate(ok), ok);
  for (const bad of ['', '01-05-2001', '2001-13', '2001-02-29', '2001-05-32', '2001-5-3', '2001-05-03T25:00', 'May 2001', '2001/1999', '1/2/3']) t.notOk(isDwcDate(bad), bad);
  t.equal(dateStart('1999'), '1999-01-01');
  t.equal(dateStart('1999-07/2000'), '1999-07-01');
  // Every day-shaped string, real days or not, against the calendar of Date.UTC.
  for (const y of [1000, 1582, 1900, 1999, 2000, 2004, 2023, 2100, 2400, 9999]) {
    for (let m = 0; m <= 13; m++) {
      for (let d = 0; d <= 32; d++) {
        const s = `${y}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
        const day = new Date(Date.UTC(y, m - 1, d));
        const real = m >= 1 && m <= 12 && d >= 1 && day.getUTCMonth() === m - 1 && day.getUTCDate() === d;
        if (dateStart(s) !== (real ? s : undefined)) t.fail(`${s}: ${dateStart(s)}`);
      }
    }
  }
  t.equal(dateStart('0004-02-29'), '0004-02-29', 'years before 1000 still go through the pattern');
  t.equal(dateStart('2001-05-03x'), undefined);
});

t.test('sortable numbers sort bytewise in numeric order', async (t) => {
  const r = rng(9);
  const nums = [0, -0, 1, -1, 90, -90, 180, -180, 1e-9, -1e-9, 0.5, -0.5, ...Array.from({ length: 500 }, () => (r() - 0.5) * 10 ** Math.floor(r() * 8))];
  const byNumber = [...nums].sort((a, b) => a - b).map(sortableNumber);
  const byBytes = nums.map(sortableNumber).sort();
  t.same(byBytes, byNumber);
  t.equal(sortableNumber(-0), sortableNumber(0));
  // The encoding is on disk: the same text as the Buffer-based one it replaced.
  const before = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeDoubleBE(n === 0 ? 0 : n);
    if (b[0]! & 0x80) for (let i = 0; i < 8; i++) b[i] = ~b[i]! & 0xff;
    else b[0] = b[0]! | 0x80;
    return b.toString('hex');
  };
  for (const n of [...nums, Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE, Infinity, -Infinity]) if (sortableNumber(n) !== before(n)) t.fail(String(n));
});

t.test('NDJSON export line: the same text as the record view serialised whole', async (t) => {
  const base = { version: 3, created: 1_700_000_000_123, createdBy: 'W', updated: 1_700_000_500_000, updatedBy: 'R', status: 'on-loan' as const, media: [{ bucket: 'b', key: 'k "1"', role: 'image' }] };
  const data = { institutionCode: 'NHM', collectionCode: 'ENT', catalogNumber: 'X/1', scientificName: 'Apis "mellifera"\n', dynamicProperties: { a: [1, null] } };
  const cases = [
    { ...base, data },
    { ...base, data, loan: { event: 'e1', borrower: 'Kew', dueDate: '2030-01-01' } },
    { ...base, data, media: [], deleted: { at: 1_700_000_900_000, by: 'W', reason: 'duplicate' } },
  ];
  for (const rec of cases) t.equal(recordLine(['NHM', 'ENT', 'X/1'], rec), JSON.stringify(recordView(['NHM', 'ENT', 'X/1'], rec)));
  // The export writes the same lines into its output bytes (ids and values with quotes, escapes and unicode; lines larger than a piece).
  const ids = [['NHM', 'ENT', 'X/1'], ['K', 'B', 'é/🦋 "1"\\'], ['N', 'P', '\t']] as const;
  const big = { ...base, data: { ...data, occurrenceRemarks: 'é🦋"\n'.repeat(100_000) } };
  const all = [...cases, big].flatMap((rec) => ids.map((id) => ({ id, rec })));
  const got: Buffer[] = [];
  for await (const b of ndjson((async function* () { yield all.map(({ id, rec }) => new Match(id, encodeRecord(rec))); })())) got.push(b);
  t.ok(Buffer.concat(got).equals(Buffer.from(all.map(({ id, rec }) => `${JSON.stringify(recordView(id, rec))}\n`).join(''))), 'the export: the same bytes');
});

t.test('stored record text: decodes to the same record; deletion is seen without decoding', async (t) => {
  const base = { version: 3, created: 1_700_000_000_123, createdBy: 'W', updated: 1_700_000_500_000, updatedBy: 'R', status: 'on-loan' as const, media: [] };
  // Field values that spell out the markers isDeletedText looks for must not fool it.
  const data = { institutionCode: 'NHM', collectionCode: 'ENT', catalogNumber: ',"deleted":{', occurrenceRemarks: ',"data":', dynamicProperties: { deleted: { at: 1 }, data: 2, media: [3] } };
  const live = { ...base, data, loan: { event: 'e1', borrower: ',"deleted":{"at":1}', dueDate: '2030-01-01' } };
  const gone = { ...base, data, deleted: { at: 1_700_000_900_000, by: 'W', reason: ',"data":{' } };
  for (const rec of [live, gone]) t.same(decodeRecord(encodeRecord(rec)), rec);
  const linked = { ...live, media: [{ bucket: 'b', key: ',"media":[]}', role: 'image' }] };
  for (const rec of [live, gone, linked]) t.same(decodeFields(encodeRecord(rec)), { data: rec.data, media: rec.media }, 'data and links alone');
  t.equal(isDeletedText(encodeRecord(live)), false);
  t.equal(isDeletedText(encodeRecord(gone)), true);
});

t.test('zip writer: the real unzip reads back every byte', async (t) => {
  const dir = await tempDir('valentine-zip-');
  t.teardown(() => removeDir(dir));
  const random = randomBytes(3 << 20); // incompressible, several deflate blocks
  const text = 'occurrence\n'.repeat(100_000);
  async function* slowly(b: Buffer) {
    for (let i = 0; i < b.length; i += 100_000) yield b.subarray(i, i + 100_000);
  }
  const parts: Buffer[] = [];
  for await (const c of zip([
    { name: 'random.bin', data: slowly(random) },
    { name: 'text.txt', data: [text] },
    { name: 'empty.txt', data: [] },
    { name: 'dir/ünïcødé.txt', data: ['ok'] },
  ]))
    parts.push(c);
  const file = join(dir, 'a.zip');
  await writeFile(file, Buffer.concat(parts));
  t.match((await run('unzip', ['-t', file])).stdout, /No errors detected/);
  await run('unzip', ['-q', file, '-d', join(dir, 'out')]);
  const { readFile } = await import('node:fs/promises');
  t.ok((await readFile(join(dir, 'out/random.bin'))).equals(random), 'binary entry');
  t.equal(await readFile(join(dir, 'out/text.txt'), 'utf8'), text, 'text entry (compressed)');
  t.equal((await readFile(join(dir, 'out/empty.txt'))).length, 0, 'empty entry');
  t.equal(await readFile(join(dir, 'out/dir/ünïcødé.txt'), 'utf8'), 'ok', 'UTF-8 names');
});

t.test('zip writer: more than 65,535 entries switch to Zip64 end records, and unzip reads them', async (t) => {
  const dir = await tempDir('valentine-zip64-');
  t.teardown(() => removeDir(dir));
  const n = 65_600;
  function* entries() {
    for (let i = 0; i < n; i++) yield { name: `e${i}.txt`, data: [String(i)] };
  }
  const parts: Buffer[] = [];
  for await (const c of zip(entries())) parts.push(c);
  const bytes = Buffer.concat(parts);
  t.ok(bytes.includes(Buffer.from([0x50, 0x4b, 0x06, 0x06])), 'a Zip64 end of central directory record');
  const file = join(dir, 'many.zip');
  await writeFile(file, bytes);
  t.match((await run('unzip', ['-t', file], { maxBuffer: 64 << 20 })).stdout, /No errors detected/);
  t.equal((await run('unzip', ['-Z1', file], { maxBuffer: 64 << 20 })).stdout.trim().split('\n').length, n, 'every entry listed');
  t.equal((await run('unzip', ['-p', file, `e${n - 1}.txt`])).stdout, String(n - 1), 'the last entry reads back');
});

t.test('download counts: one entry per download and record, summed on read; the older single count entry still counts', async (t) => {
  const dir = await tempDir('valentine-recode-counts-');
  t.teardown(() => removeDir(dir));
  // A store written before count entries were per download: one entry per record, its value the count.
  const old = new Level<string, string>(dir);
  await old.put('C\0NHM\0ENT\0A-1', '5');
  await old.close();
  const store = await RecodeStore.open(dir);
  t.teardown(() => store.close());
  const a = ['NHM', 'ENT', 'A-1'] as const;
  const b = ['NHM', 'ENT', 'A-10'] as const; // shares a's key as a prefix: must not count into a
  t.equal(await store.downloadCount(a), 5);
  const d1 = randomUUID();
  const d2 = randomUUID();
  await Promise.all([store.countDownloads(d1, [a, b]), store.countDownloads(d2, [a])]);
  t.equal(await store.downloadCount(a), 7, 'each download counts once, concurrent ones too');
  t.equal(await store.downloadCount(b), 1);
  await store.countDownloads(d1, [a]);
  t.equal(await store.downloadCount(a), 7, 'writing a download\'s entry again (a retried batch) does not count it twice');
  t.equal(await store.downloadCount(['NHM', 'ENT', 'A']), 0, 'a record whose id is a prefix of counted ones has none');
});

t.test('download counts folded: finished downloads into one entry per record, running ones left alone, counts unchanged', async (t) => {
  const dir = await tempDir('valentine-recode-fold-');
  t.teardown(() => removeDir(dir));
  const old = new Level<string, string>(dir);
  await old.put('C\0NHM\0ENT\0A-1', '5'); // a count from before per-download entries
  await old.close();
  let store = await RecodeStore.open(dir);
  const a = ['NHM', 'ENT', 'A-1'] as const;
  const b = ['NHM', 'ENT', 'A-10'] as const;
  const by = { by: 'tester', format: 'ndjson', query: {} };
  // A download an earlier process started and never finished: its export is gone with it.
  const orphan = await store.startDownload(by);
  await store.countDownloads(orphan.id, [a]);
  await store.close();
  await new Promise((r) => setTimeout(r, 5));
  store = await RecodeStore.open(dir);

  const [d1, d2, running] = [await store.startDownload(by), await store.startDownload(by), await store.startDownload(by)];
  await store.countDownloads(d1.id, [a, b]);
  await store.countDownloads(d2.id, [a]);
  await store.countDownloads(running.id, [a, b]);
  await store.finishDownload(d1);
  await store.finishDownload(d2);
  t.same(await store.foldDownloadCounts(), { records: 2, entries: 4 }, 'a absorbs d1, d2 and the orphan; b absorbs d1');
  t.equal(await store.downloadCount(a), 9, 'a: 5 before, the orphan, d1, d2 and the running download');
  t.equal(await store.downloadCount(b), 2, 'b: d1 and the running download');
  t.same(await store.foldDownloadCounts(), { records: 0, entries: 0 }, 'nothing left to fold while the running download runs');
  await store.countDownloads(d1.id, [a]);
  t.equal(await store.downloadCount(a), 10, 'an entry of a folded download written again counts again: hence only finished downloads fold');
  await store.finishDownload(running);
  const [x, y] = await Promise.all([store.foldDownloadCounts(), store.foldDownloadCounts()]);
  t.equal(x, y, 'a fold asked for during one joins it');
  t.same(x, { records: 2, entries: 3 });
  t.equal(await store.downloadCount(a), 10);
  t.equal(await store.downloadCount(b), 2);
  await store.close();
  const raw = new Level<string, string>(dir);
  const left: Record<string, string> = {};
  for await (const [k, v] of raw.iterator({ gt: 'C\0', lt: 'C\x01' })) left[k] = v;
  await raw.close();
  t.same(left, { 'C\0NHM\0ENT\0A-1': '10', 'C\0NHM\0ENT\0A-10': '2' }, 'on disk: one entry per record');
});

t.test('data fields read from stored text without a parse: the values JSON.parse sees, and CSV rows as from parsed records', async (t) => {
  const r = rng(11);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const strings = ['', 'plain', 'a "quoted" word', 'back\\slash\\', 'ends in a backslash \\', 'comma, and\nline', '{"not":"an object"}', '[1,2]', 'é🦋', '\ud800 lone', '\u0001', 'null', '"'];
  const values = [...strings, 0, -0, 1.5, -90, 1e21, 5e-324, true, false, null, { a: '}', b: [{ c: ']"' }] }, [], {}, ['x', { y: null }]];
  const names = ['scientificName', 'country', 'decimalLatitude', 'dynamicProperties', 'locality', 'we"ird', 'back\\slash', 'typeStatus'];
  const reader = new DataFieldReader(names);
  const base = { version: 1, created: 1_700_000_000_000, createdBy: 'W', updated: 1_700_000_000_000, updatedBy: 'W', status: 'registered' as const, media: [] };
  for (let n = 0; n < 400; n++) {
    // Records share a field order in runs (as one import's do), then change it; some fields are left out, others are not chosen.
    const order = n % 50 < 25 ? [...names, 'other'] : [...names, 'other'].reverse();
    const data: Record<string, unknown> = {};
    for (const f of order) if (r() < 0.8) data[f] = pick(values);
    const text = encodeRecord({ ...base, data });
    const out: (string | undefined)[] = new Array(names.length);
    reader.read(text, out);
    const want = names.map((f) => (data[f] === undefined ? undefined : JSON.parse(JSON.stringify(data[f]))));
    t.same(out.map((j) => (j === undefined ? undefined : JSON.parse(j))), want, `record ${n}`);
  }
  // CSV rows against rows written from the parsed records, as export did before.
  const schema = CollectionSchema.compile(structuredClone(DARWIN_CORE_SCHEMA) as unknown as Record<string, unknown>);
  const fields = schema.fields;
  const matches = Array.from({ length: 300 }, (_, n) => {
    const data: Record<string, unknown> = {};
    for (const f of n % 2 ? fields : [...fields].reverse()) if (r() < 0.5) data[f] = pick(values);
    const media = n % 3 ? [] : [{ bucket: 'b', key: `k,"${n}"`, role: 'image' }];
    return { data, media, match: new Match(['I', 'C', String(n)], encodeRecord({ ...base, data, media })) };
  });
  const reference = (d: Record<string, unknown>, media: unknown[]) =>
    `${fields.map((f) => (d[f] === undefined || d[f] === null ? '' : csvField(typeof d[f] === 'object' ? JSON.stringify(d[f]) : String(d[f])))).join(',')},${media.length > 0 ? csvField(JSON.stringify(media)) : ''}\r\n`;
  const got: Buffer[] = [];
  for await (const b of csv((async function* () { yield matches.map((m) => m.match); })(), schema)) got.push(b);
  t.ok(Buffer.concat(got).equals(Buffer.from(csvRow([...fields, 'media']) + matches.map((m) => reference(m.data, m.media)).join(''))), 'the same bytes');
});

t.test('CSV rows from stored bytes (export/csv-row.ts): the same bytes as rows written from parsed records, whatever the values and field order', async (t) => {
  const r = rng(12);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const strings = ['', 'plain', 'a "quoted" word', '"', '""', 'back\\slash\\', 'ends in a backslash \\', 'comma, here', ',', 'line\nbreak', 'cr\rlf\r\n', 'tab\there', '\u0001\u001f', 'é🦋 ünïcödé, 中文', '\ud800 lone', 'lone \udfff', '\u2028\u2029', '{"not":"an object"}', '[1,2]', 'null', ' spaced ', 'x'.repeat(3000)];
  const values = [...strings, 0, -0, 1.5, -90, 1e21, 5e-324, -1.2345e-7, 123456789012, true, false, null, { a: '}', b: [{ c: ']"' }] }, [], {}, [1, 2], ['x', { y: null }], { 'k,"\\': 'v\n' }, { deep: [[[{}]]] }];
  const schema = CollectionSchema.compile(structuredClone(DARWIN_CORE_SCHEMA) as unknown as Record<string, unknown>);
  const fields = schema.fields;
  const base = { version: 1, created: 1_700_000_000_000, createdBy: 'Wé', updated: 1_700_000_000_000, updatedBy: 'W,"', status: 'registered' as const };
  const medias = [[], [{ bucket: 'b', key: 'k', role: 'image' }], [{ bucket: 'b', key: 'k,"é\n\\', role: 'label' }, { bucket: 'c', key: '🦋', role: 'image' }]];
  const matches = Array.from({ length: 2000 }, (_, n) => {
    // Runs of records in schema order (the usual case, fast path), with some in other orders (the general path);
    // fields left out, fields not in the schema, and every record a different value mix.
    const kind = Math.floor(n / 100) % 4;
    const order = kind === 0 ? fields : kind === 1 ? [...fields].reverse() : kind === 2 ? [...fields].sort(() => r() - 0.5) : ['notInSchema', ...fields, 'we"ird\\'];
    const data: Record<string, unknown> = {};
    for (const f of order) if (r() < (n % 7 === 0 ? 0.05 : 0.6)) data[f] = pick(values);
    if (n % 50 === 0) for (const f of Object.keys(data)) delete data[f]; // no fields at all
    const media = pick(medias);
    return { data, media, match: new Match(['I', 'C', String(n)], encodeRecord({ ...base, data, media })) };
  });
  const reference = (d: Record<string, unknown>, media: unknown[]) =>
    `${fields.map((f) => (d[f] === undefined || d[f] === null ? '' : csvField(typeof d[f] === 'object' ? JSON.stringify(d[f]) : String(d[f])))).join(',')},${media.length > 0 ? csvField(JSON.stringify(media)) : ''}\r\n`;
  // Rows in chunks of several sizes (the output is handed on in pieces; a row may be larger than the spare room).
  for (const size of [1, 7, 1000]) {
    const got: Buffer[] = [];
    async function* rows() {
      for (let i = 0; i < matches.length; i += size) yield matches.slice(i, i + size).map((m) => m.match);
    }
    for await (const b of csv(rows(), schema)) got.push(b);
    const want = Buffer.from(csvRow([...fields, 'media']) + matches.map((m) => reference(m.data, m.media)).join(''));
    const all = Buffer.concat(got);
    if (!all.equals(want)) {
      // Point at the first differing row.
      const lines = (x: Buffer) => x.toString('utf8').split('\r\n');
      const [a, b] = [lines(all), lines(want)];
      const i = a.findIndex((l, k) => l !== b[k]);
      t.equal(a[i], b[i], `row ${i}`);
    }
    t.ok(all.equals(want), `the same bytes, ${size} records a chunk`);
  }
  // A row much larger than the output's pieces.
  const big = { catalogNumber: 'é'.repeat(200_000), locality: 'a,b'.repeat(100_000), dynamicProperties: { x: '"'.repeat(100_000) } };
  const got: Buffer[] = [];
  for await (const b of csv((async function* () { yield [new Match(['I', 'C', 'big'], encodeRecord({ ...base, data: big, media: [] }))]; })(), schema)) got.push(b);
  t.ok(Buffer.concat(got).equals(Buffer.from(csvRow([...fields, 'media']) + reference(big, []))), 'a row larger than a piece');
});

t.test('records read a chunk ahead (export, count): the same chunks; a walk stopped part-way leaves no read behind', async (t) => {
  const dir = await tempDir('valentine-recode-ahead-');
  t.teardown(() => removeDir(dir));
  const raw = new Level<string, string>(dir);
  await raw.batch(Array.from({ length: 2500 }, (_, n) => ({ type: 'put' as const, key: `R\0I\0C\0${String(n).padStart(5, '0')}`, value: `{"n":${n}}` })));
  await raw.close();
  const store = await RecodeStore.open(dir);
  const read = async (ahead: boolean, stopAfter = Infinity) => {
    const chunks: [string, string][][] = [];
    for await (const c of store.recordChunks(keys.records(), 1000, ahead)) {
      chunks.push(c);
      if (chunks.length === stopAfter) break;
    }
    return chunks;
  };
  const plain = await read(false);
  t.same(plain.map((c) => c.length), [1000, 1000, 500]);
  t.same(await read(true), plain, 'the same chunks');
  t.same(await read(true, 1), plain.slice(0, 1), 'stopped after the first: its read-ahead is waited for, the iterator closed');
  await store.close();
});

t.test('the record key an index entry points at, cut from the entry\'s bytes', async (t) => {
  const ids = [['NHM', 'ENT', 'A-1'], ['K', 'B', 'é/🦋 1'], ['NHM', 'PAL', 'X']] as const;
  for (const id of ids) {
    for (const [field, value] of [['scientificName', 'Apis mellifera'], ['country', 'Côte d’Ivoire'], ['eventDate', '1999-01-01'], ['decimalLatitude', sortableNumber(-12.5)], ['genus', 'A']]) {
      const entry = keys.index(field!, value!, id);
      t.ok(keys.recordOfIndex(entry).equals(keys.record(id)), `${field} ${value} ${id.join('/')}`);
      t.same(keys.indexRecordOf(entry), id);
    }
  }
});
