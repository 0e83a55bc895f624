// The pieces under the API, each checked against an independent reference:
// the error catalogue, CSV both ways, Darwin Core dates, the sortable number
// encoding the indexes use, the export's NDJSON line writer, the zip
// writer read back by the real unzip, and the store's download counts.
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { csvRow, parseCsv } from '../../recode-api/csv.js';
import { RECODE_ERRORS } from '../../recode-api/errors.js';
import { decodeFields, decodeRecord, encodeRecord, isDeletedText, recordLine, recordView } from '../../recode-api/record-json.js';
import { zip } from '../../recode-api/export/zip.js';
import { dateStart, isDwcDate, sortableNumber } from '../../recode-api/schema.js';
import { Level } from 'level';
import { RecodeStore } from '../../recode-api/store.js';
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
});

t.test('sortable numbers sort bytewise in numeric order', async (t) => {
  const r = rng(9);
  const nums = [0, -0, 1, -1, 90, -90, 180, -180, 1e-9, -1e-9, 0.5, -0.5, ...Array.from({ length: 500 }, () => (r() - 0.5) * 10 ** Math.floor(r() * 8))];
  const byNumber = [...nums].sort((a, b) => a - b).map(sortableNumber);
  const byBytes = nums.map(sortableNumber).sort();
  t.same(byBytes, byNumber);
  t.equal(sortableNumber(-0), sortableNumber(0));
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
