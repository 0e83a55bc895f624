// The import's batches against the one-record path: records imported in
// small batches (bad lines and a blank line interleaved, the body cut
// mid-line, one catalogue number given twice) are stored with the same
// fields, versions, index entries and collection counts as the same records
// created and updated one at a time; every bad line is reported by number,
// in order; a re-run changes nothing.
import { Readable } from 'node:stream';
import t from 'tap';
import { importRecords, ndjsonItems } from '../../recode-api/bulk.js';
import { keys, type RecordId } from '../../recode-api/keys.js';
import { INDEXES } from '../../recode-api/schema.js';
import { RecodeStore } from '../../recode-api/store.js';
import type { Engine } from '../../tiering/index.js';
import { removeDir, tempDir } from '../helpers/gateway.js';
import { generate, type Data } from './helpers.js';

// No line links media, so the import never asks the engine.
const NO_ENGINE = undefined as unknown as Engine;
const BY = 'importer';

async function indexEntries(store: RecodeStore): Promise<string[]> {
  const out: string[] = [];
  for (const f of Object.keys(INDEXES)) for await (const chunk of store.keyChunks(keys.indexRange(f))) for (const k of chunk) out.push(k.toString('utf8').replaceAll('\0', '|'));
  return out;
}

const idOf = (d: Data): RecordId => [String(d.institutionCode), String(d.collectionCode), String(d.catalogNumber)];

/** The body in 97-byte chunks, so lines are cut across chunks. */
function body(text: string): AsyncIterable<Buffer> {
  const all = Buffer.from(text);
  const chunks: Buffer[] = [];
  for (let i = 0; i < all.length; i += 97) chunks.push(all.subarray(i, i + 97));
  return Readable.from(chunks);
}

t.test('batched import = one record at a time; bad lines by number; re-run unchanged', async (t) => {
  const dirA = await tempDir('valentine-recode-batches-');
  const dirB = await tempDir('valentine-recode-single-');
  const imported = await RecodeStore.open(dirA);
  const single = await RecodeStore.open(dirB);
  t.teardown(async () => {
    await imported.close();
    await single.close();
    await removeDir(dirA);
    await removeDir(dirB);
  });

  const rows = generate(60, 11);
  const original = rows[5]!;
  const changed = { ...original, recordedBy: 'Second Look' }; // moves its recordedBy index entry
  const lines = rows.map((data) => JSON.stringify({ data }));
  // Line numbers (1-based) after insertion, in order: a repeat of record 5 changed, three bad lines and a blank one.
  const inserted: [number, string][] = [
    [4, 'not json {'],
    [9, JSON.stringify({ data: changed })],
    [10, JSON.stringify({ data: { ...rows[7], catalogNumber: 'BAD-LAT', decimalLatitude: 123 } })],
    [20, ''],
    [33, JSON.stringify({ data: { ...rows[7], catalogNumber: 'BAD-FIELD', colour: 'red' } })],
  ];
  for (const [at, line] of inserted) lines.splice(at - 1, 0, line);
  const sum = await importRecords(imported, NO_ENGINE, ndjsonItems(body(`${lines.join('\n')}\n`)), BY, 7);
  t.same([sum.lines, sum.created, sum.updated, sum.unchanged, sum.failed], [64, 60, 1, 0, 3], 'blank lines are not counted');
  t.same(
    sum.errors.map((e) => [e.line, e.errors.map((f) => f.pointer)]),
    [
      [4, ['']],
      [10, ['/data/decimalLatitude']],
      [33, ['/data/colour']],
    ],
    'bad lines by number, in order, with their fields',
  );

  // The same records one at a time: each created, then record 5 updated.
  for (const data of rows) await single.create({ data }, BY);
  await single.update(idOf(rows[5]!), { data: changed }, 1, BY);
  rows[5] = changed;

  for (const data of rows) {
    const [a, b] = [await imported.get(idOf(data)), await single.get(idOf(data))];
    t.same([a?.data, a?.media, a?.status, a?.version], [b?.data, b?.media, b?.status, b?.version], `${data.catalogNumber} stored alike`);
  }
  for (const c of ['BAD-LAT', 'BAD-FIELD']) t.equal(await imported.get(['NHM', String(rows[7]!.collectionCode), c]), undefined, `${c} not stored`);
  const entries = await indexEntries(imported);
  t.same(entries, await indexEntries(single), 'the same index entries (none left from the first version of record 5)');
  const entryOf = (who: unknown) => `I|r|${String(who)}|NHM|${String(original.collectionCode)}|${String(original.catalogNumber)}`;
  t.ok(entries.includes(entryOf('Second Look')) && !entries.includes(entryOf(original.recordedBy)), 'the changed value indexed, the old one gone');
  const sorted = (s: RecodeStore) => s.collections().sort((x, y) => x.collectionCode.localeCompare(y.collectionCode));
  t.same(sorted(imported), sorted(single), 'the same collection counts');
  t.equal(sorted(imported).reduce((n, c) => n + c.records, 0), 60);

  const again = await importRecords(imported, NO_ENGINE, ndjsonItems(body(`${rows.map((data) => JSON.stringify({ data })).join('\n')}\n`)), BY, 7);
  t.same([again.created, again.updated, again.unchanged, again.failed], [0, 0, 60, 0], 're-running creates and changes nothing');
  t.same(await indexEntries(imported), entries);
  t.equal((await imported.get(idOf(changed)))?.version, 2);
});

t.test('stored records found by span: a span holding many records the batch does not name, a short one, a dense re-run', async (t) => {
  const dir = await tempDir('valentine-recode-spans-');
  const store = await RecodeStore.open(dir);
  t.teardown(async () => {
    await store.close();
    await removeDir(dir);
  });
  const rows: Data[] = generate(400, 3).map((d) => ({ ...d, collectionCode: 'BOT' }));
  const text = (ds: Data[]) => `${ds.map((data) => JSON.stringify({ data })).join('\n')}\n`;
  const run = (ds: Data[]) => importRecords(store, NO_ENGINE, ndjsonItems(body(text(ds))), BY);
  t.equal((await run(rows)).created, 400);

  // The batch spans all 400 stored records but names 3 (more than twice its size: read by lookups).
  const wide = [{ ...rows[0]!, recordedBy: 'Wide' }, rows[399]!, { ...rows[1]!, catalogNumber: `${String(rows[200]!.catalogNumber)}a` }];
  const a = await run(wide);
  t.same([a.created, a.updated, a.unchanged, a.failed], [1, 1, 1, 0], 'wide span');
  // The batch spans 11 stored records (read by one iterator, the 8 it does not name passed over).
  const short = [{ ...rows[10]!, recordedBy: 'Short' }, rows[20]!, { ...rows[2]!, catalogNumber: `${String(rows[15]!.catalogNumber)}a` }];
  const b = await run(short);
  t.same([b.created, b.updated, b.unchanged, b.failed], [1, 1, 1, 0], 'short span');
  for (const d of [...wide, ...short]) t.same((await store.get(idOf(d)))?.data, d, `${String(d.catalogNumber)} as imported`);

  const all = [...rows, wide[2]!, short[2]!];
  all[0] = wide[0]!;
  all[10] = short[0]!;
  const again = await run(all);
  t.same([again.created, again.updated, again.unchanged, again.failed], [0, 0, 402, 0], 'a dense re-run finds every record');
  t.same(store.collections(), [{ institutionCode: 'NHM', collectionCode: 'BOT', records: 402 }]);
});
