// Bulk import and export: per-line errors, idempotent re-runs, the export
// round trip into an empty store (NDJSON and CSV), a Darwin Core Archive
// opened with the real `unzip`, download events and per-record counts, and
// the metrics that count them.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { removeDir, s3Client, tempDir } from '../helpers/gateway.js';
import { ADMIN, READER, call, generate, idOfData, ndjsonOf, startRecodeGateway } from './helpers.js';

const run = promisify(execFile);
const gw = await startRecodeGateway();
const tmp = await tempDir('valentine-recode-bulk-');
t.teardown(async () => {
  await gw.stop();
  await removeDir(gw.dataDir);
  await removeDir(tmp);
});

const N = 2000;
const rows = generate(N, 7);
// Some records depict real stored objects.
const s3 = s3Client(gw);
await s3.send(new CreateBucketCommand({ Bucket: 'images' }));
const linked = rows.slice(0, 25);
for (const [i, d] of linked.entries()) {
  const key = `scans/${String(d.catalogNumber)}.jpg`;
  await s3.send(new PutObjectCommand({ Bucket: 'images', Key: key, Body: `image ${i}` }));
  (d as Record<string, unknown>).__media = [{ bucket: 'images', key, role: 'image' }, ...(i % 5 === 0 ? [{ bucket: 'images', key, role: 'label' }].map((m) => ({ ...m, key: `${key}.label` })) : [])];
  if (i % 5 === 0) await s3.send(new PutObjectCommand({ Bucket: 'images', Key: `${key}.label`, Body: 'label' }));
}
s3.destroy();
const lineOf = (d: Record<string, unknown>) => {
  const { __media, ...data } = d;
  return JSON.stringify(__media ? { data, media: __media } : { data });
};
const mediaCount = linked.reduce((n, d) => n + ((d as { __media: unknown[] }).__media.length), 0);
const NDJSON = 'application/x-ndjson';

type Rec = { id: string; data: unknown; media: unknown };
async function exportAll(g: typeof gw, format = 'ndjson', query = ''): Promise<{ text: string; id: string | null }> {
  const r = await call(g, 'GET', `/export?format=${format}${query}`);
  if (r.status !== 200) throw new Error(`export: ${r.status} ${r.text}`);
  return { text: r.text, id: r.headers.get('recode-download-id') };
}
const parseNdjson = (text: string) =>
  text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Rec)
    .map(({ id, data, media }) => ({ id, data, media }));

t.test('import: good lines stored, bad lines reported by number, re-run is idempotent', async (t) => {
  const bad = [
    'this is not json',
    JSON.stringify({ data: { ...rows[100], catalogNumber: 'BAD-1', decimalLatitude: 123 } }),
    JSON.stringify({ data: { ...rows[100], catalogNumber: 'BAD-2', colour: 'red' } }),
    JSON.stringify({ data: { ...rows[100], catalogNumber: 'BAD-3' }, media: [{ bucket: 'images', key: 'nothing-here', role: 'image' }] }),
    JSON.stringify([1, 2]),
  ];
  const lines = rows.map(lineOf);
  // Bad lines at known positions (1-based line numbers after insertion).
  const at = [3, 500, 1001, 1500, 2004];
  at.forEach((pos, i) => lines.splice(pos - 1, 0, bad[i]!));
  const r = await call(gw, 'POST', '/import', { body: `${lines.join('\n')}\n`, headers: { 'content-type': NDJSON } });
  t.equal(r.status, 200);
  t.equal(r.body.lines, N + bad.length);
  t.equal(r.body.created, N);
  t.equal(r.body.failed, bad.length);
  t.same(r.body.errors.map((e: { line: number }) => e.line), at, 'each bad line by its number');
  t.same(r.body.errors[1].errors.map((e: { pointer: string }) => e.pointer), ['/data/decimalLatitude']);
  t.same(r.body.errors[2].errors.map((e: { pointer: string }) => e.pointer), ['/data/colour']);
  t.same(r.body.errors[3].errors.map((e: { pointer: string }) => e.pointer), ['/media/0']);
  for (const c of ['BAD-1', 'BAD-2', 'BAD-3']) t.equal((await call(gw, 'GET', `/records/NHM/${String(rows[100]!.collectionCode)}/${c}`)).status, 404, `${c} not stored`);

  const again = await call(gw, 'POST', '/import', { body: `${rows.map(lineOf).join('\n')}\n`, headers: { 'content-type': NDJSON } });
  t.same([again.body.created, again.body.updated, again.body.unchanged, again.body.failed], [0, 0, N, 0], 're-running creates nothing twice');
  t.equal((await call(gw, 'GET', '/records?count=true&limit=1')).body.total, N);

  const changed = { ...rows[101], recordedBy: 'Changed Collector' };
  const upd = await call(gw, 'POST', '/import', { body: `${JSON.stringify(changed)}\n`, headers: { 'content-type': NDJSON } });
  t.equal(upd.body.updated, 1, 'a changed line updates its record (bare DwC objects are accepted too)');
  t.equal((await call(gw, 'GET', `/records/${idOfData(rows[101]!)}`)).body.data.recordedBy, 'Changed Collector');
  rows[101] = changed;
  t.equal((await call(gw, 'POST', '/import', { body: 'x\n', headers: { 'content-type': 'application/xml' } })).status, 415, 'unknown media type');
});

t.test('export → import into an empty store → identical records (NDJSON and CSV)', async (t) => {
  const original = parseNdjson((await exportAll(gw)).text);
  t.equal(original.length, N);
  t.equal(original.filter((r) => (r.media as unknown[]).length > 0).length, linked.length, 'links exported');
  const csvText = (await exportAll(gw, 'csv')).text;

  for (const [format, body, type] of [
    ['ndjson', original.map((r) => JSON.stringify(r)).join('\n'), NDJSON],
    ['csv', csvText, 'text/csv'],
  ] as const) {
    const fresh = await startRecodeGateway();
    try {
      const s3b = s3Client(fresh);
      await s3b.send(new CreateBucketCommand({ Bucket: 'images' }));
      for (const r of original) for (const m of r.media as { key: string }[]) await s3b.send(new PutObjectCommand({ Bucket: 'images', Key: m.key, Body: 'x' }));
      s3b.destroy();
      const imp = await call(fresh, 'POST', '/import', { body, headers: { 'content-type': type } });
      t.equal(imp.body.created, N, `${format}: all created`);
      t.equal(imp.body.failed, 0, `${format}: none failed ${JSON.stringify(imp.body.errors?.[0])}`);
      const copy = parseNdjson((await exportAll(fresh)).text);
      t.same(copy, original, `${format}: the same records, fields, types and links, in the same order`);
    } finally {
      await fresh.stop();
      await removeDir(fresh.dataDir);
    }
  }
});

t.test('Darwin Core Archive: opened with unzip, meta.xml and row counts', async (t) => {
  const q = '&collectionCode=ENT';
  const want = rows.filter((d) => d.collectionCode === 'ENT');
  const wantMedia = linked.filter((d) => d.collectionCode === 'ENT').reduce((n, d) => n + (d as { __media: unknown[] }).__media.length, 0);
  t.ok(wantMedia > 0, 'some ENT records carry links');
  const res = await fetch(`${gw.adminUrl}/recode/v1/export?format=dwca${q}`, { headers: { authorization: `Basic ${Buffer.from(`${READER[0]}:${READER[1]}`).toString('base64')}` } });
  t.equal(res.status, 200);
  t.equal(res.headers.get('content-type'), 'application/zip');
  const file = join(tmp, 'dwca.zip');
  await writeFile(file, Buffer.from(await res.arrayBuffer()));
  const test = await run('unzip', ['-t', file]);
  t.match(test.stdout, /No errors detected/);
  const list = await run('unzip', ['-Z1', file]);
  t.same(list.stdout.trim().split('\n'), ['meta.xml', 'occurrence.txt', 'multimedia.txt']);
  const meta = (await run('unzip', ['-p', file, 'meta.xml'])).stdout;
  t.match(meta, /<core [^>]*rowType="http:\/\/rs\.tdwg\.org\/dwc\/terms\/Occurrence"/);
  t.match(meta, /<extension [^>]*rowType="http:\/\/rs\.tdwg\.org\/ac\/terms\/Multimedia"/);
  t.match(meta, /term="http:\/\/rs\.tdwg\.org\/dwc\/terms\/scientificName"/);
  t.match(meta, /term="http:\/\/rs\.tdwg\.org\/ac\/terms\/accessURI"/);
  const fieldCount = (meta.split('</core>')[0]!.match(/<field /g) ?? []).length;
  const occ = (await run('unzip', ['-p', file, 'occurrence.txt'], { maxBuffer: 64 << 20 })).stdout.split('\n').filter((l) => l !== '');
  t.equal(occ.length, want.length + 1, 'one row per record plus the header');
  t.ok(occ.every((l) => l.split('\t').length === fieldCount + 1), 'every row has every column (tabs in values are escaped)');
  const sciCol = occ[0]!.split('\t').indexOf('scientificName');
  t.same(occ.slice(1).map((l) => l.split('\t')[sciCol]).sort(), want.map((d) => String(d.scientificName)).sort(), 'the records themselves');
  const mm = (await run('unzip', ['-p', file, 'multimedia.txt'])).stdout.split('\n').filter((l) => l !== '');
  t.equal(mm.length, wantMedia + 1, 'one multimedia row per link plus the header');
  const [coreid, accessURI] = mm[1]!.split('\t');
  t.ok(occ.some((l) => l.startsWith(`${coreid}\t`)), 'multimedia rows point at core rows');
  t.match(accessURI, new RegExp(`^${gw.s3Url.replace(/[.]/g, '\\.')}/images/scans/`), 'and at the stored files');
  const obj = await fetch(accessURI!);
  t.equal(obj.status, 403, 'the link reaches the S3 endpoint (which wants a signature)');
  await obj.arrayBuffer();
});

t.test('every export is a download event; per-record download counts', async (t) => {
  const target = rows[10]!;
  const before = (await call(gw, 'GET', `/records/${idOfData(target)}`)).body.downloads as number;
  const q = `&scientificName=${encodeURIComponent(String(target.scientificName))}`;
  const want = rows.filter((d) => d.scientificName === target.scientificName).length;
  const { text, id } = await exportAll(gw, 'ndjson', q);
  t.equal(text.trim().split('\n').length, want);
  t.ok(id);
  const ev = await call(gw, 'GET', `/downloads/${id}`, { as: READER });
  t.equal(ev.status, 200);
  t.equal(ev.body.records, want);
  t.equal(ev.body.bytes, Buffer.byteLength(text));
  t.equal(ev.body.complete, true);
  t.equal(ev.body.format, 'ndjson');
  t.same(ev.body.query, { scientificName: target.scientificName, sort: 'catalogNumber' }, 'the query, defaults included');
  t.ok(ev.body.finished >= ev.body.started);
  t.equal((await call(gw, 'GET', `/records/${idOfData(target)}`)).body.downloads, before + 1, 'the record counts the download');
  const other = rows.find((d) => d.scientificName !== target.scientificName)!;
  const otherBefore = (await call(gw, 'GET', `/records/${idOfData(other)}`)).body.downloads;
  await exportAll(gw, 'csv', q);
  t.equal((await call(gw, 'GET', `/records/${idOfData(target)}`)).body.downloads, before + 2);
  t.equal((await call(gw, 'GET', `/records/${idOfData(other)}`)).body.downloads, otherBefore, 'records not exported are not counted');
  await Promise.all([exportAll(gw, 'ndjson', q), exportAll(gw, 'csv', q), exportAll(gw, 'ndjson')]);
  t.equal((await call(gw, 'GET', `/records/${idOfData(target)}`)).body.downloads, before + 5, 'concurrent downloads each count once');
  t.equal((await call(gw, 'GET', `/records/${idOfData(other)}`)).body.downloads, otherBefore + 1);
  t.equal((await call(gw, 'GET', '/downloads/nope')).status, 404);
});

t.test('metrics: requests by route and status, records by collection, imports, exports, downloads', async (t) => {
  const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  t.match(text, /valentine_recode_requests_total\{method="POST",route="\/recode\/v1\/import",status="200"\} \d+/);
  t.match(text, /valentine_recode_request_duration_seconds_bucket\{le="[^"]+",method="GET",route="\/recode\/v1\/records\/:institutionCode\/:collectionCode\/:catalogNumber"\}/);
  const byColl = [...text.matchAll(/valentine_recode_records\{institution="NHM",collection="(\w+)"\} (\d+)/g)].map((m) => [m[1], Number(m[2])]);
  t.same(
    Object.fromEntries(byColl),
    Object.fromEntries(['BOT', 'ENT', 'ZOO'].map((c) => [c, rows.filter((d) => d.collectionCode === c).length])),
    'live records per collection',
  );
  t.match(text, new RegExp(`valentine_recode_import_records_total\\{outcome="created"\\} ${N}`));
  t.match(text, /valentine_recode_export_records_total\{format="dwca"\} \d+/);
  t.match(text, /valentine_recode_download_events_total\{format="ndjson",complete="true"\} \d+/);
  t.equal(mediaCount, 30);
});

t.test('audit of imported records: the creation (implied by the record), later changes, a recreation after deletion', async (t) => {
  const data = { institutionCode: 'AUD', collectionCode: 'IT', catalogNumber: 'A-1', scientificName: 'Apis mellifera', basisOfRecord: 'PreservedSpecimen' };
  const load = async (d: Record<string, unknown>) => (await call(gw, 'POST', '/import', { body: JSON.stringify({ data: d }), headers: { 'content-type': NDJSON } })).body;
  const trail = async () => (await call(gw, 'GET', '/records/AUD/IT/A-1/audit')).body.items as { seq: string; action: string; version: number; by: string; source?: string; changes?: Record<string, unknown> }[];
  t.equal((await load(data)).created, 1);
  const [created] = await trail();
  t.match(created, { action: 'create', version: 1, by: ADMIN[0], source: 'import' });
  t.equal((await trail()).length, 1, 'one entry for the creation');
  t.equal((await load({ ...data, recordedBy: 'Darwin' })).updated, 1);
  t.equal((await call(gw, 'DELETE', '/records/AUD/IT/A-1?reason=test', { headers: { 'if-match': '"2"' } })).status, 200);
  t.equal((await load(data)).created, 1, 'recreated over the deleted record');
  const all = await trail();
  t.same(all.map((e) => [e.action, e.version]), [['create', 1], ['update', 2], ['delete', 3], ['create', 4]], 'the first creation is kept when the record is recreated');
  t.equal(all[0]!.seq, created!.seq);
  t.same(all[1]!.changes!['data.recordedBy'], { after: 'Darwin' });
  t.ok(all.every((e, i) => i === 0 || e.seq > all[i - 1]!.seq), 'in sequence order');
  const first = await call(gw, 'GET', '/records/AUD/IT/A-1/audit?limit=1');
  const rest = await call(gw, 'GET', `/records/AUD/IT/A-1/audit?cursor=${first.body.next}`);
  t.same([...first.body.items, ...rest.body.items].map((e: { seq: string }) => e.seq), all.map((e) => e.seq), 'paging loses nothing');
});
