// Records over HTTP against a real gateway: create, read, update with
// If-Match, soft delete; every class of bad input answered with a problem
// document and nothing stored; roles; media links to real objects uploaded
// over S3, with their tier state, and broken once the object is deleted.
import t from 'tap';
import { CreateBucketCommand, DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { removeDir, s3Client } from '../helpers/gateway.js';
import { ADMIN, READER, WRITER, call, startRecodeGateway } from './helpers.js';

const gw = await startRecodeGateway();
t.teardown(async () => {
  await gw.stop();
  await removeDir(gw.dataDir);
});

const base = { institutionCode: 'NHM', collectionCode: 'ENT', basisOfRecord: 'PreservedSpecimen', scientificName: 'Apis mellifera' };
const rec = (catalogNumber: string, extra: Record<string, unknown> = {}) => ({ data: { ...base, catalogNumber, ...extra } });

/** A problem document with this code and status, and the pointers it names. */
function isProblem(t: TestLike, r: Awaited<ReturnType<typeof call>>, status: number, code: string): string[] {
  t.equal(r.status, status, `status ${status} (${code})`);
  t.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/, 'a problem document');
  t.equal(r.body?.code, code);
  t.equal(r.body?.status, status);
  t.match(r.body?.type, /^urn:valentine:recode:/);
  t.ok(typeof r.body?.detail === 'string' && r.body.detail.length > 0, 'with a detail');
  return (r.body?.errors ?? []).map((e: { pointer: string }) => e.pointer);
}
type TestLike = Pick<typeof t, 'equal' | 'match' | 'ok'>;

const count = async () => (await call(gw, 'GET', '/records?count=true&limit=1')).body.total as number;

t.test('create, read, update with If-Match, conflict, soft delete', async (t) => {
  const c = await call(gw, 'POST', '/records', { json: rec('E-1', { eventDate: '1901-06-02', decimalLatitude: 51.5, decimalLongitude: -0.17, dynamicProperties: { drawer: 12 } }) });
  t.equal(c.status, 201);
  t.equal(c.headers.get('etag'), '"1"');
  t.equal(c.headers.get('location'), '/recode/v1/records/NHM/ENT/E-1');
  t.equal(c.body.id, 'NHM/ENT/E-1');
  t.equal(c.body.status, 'registered');
  t.same(c.body.data.dynamicProperties, { drawer: 12 });

  const g = await call(gw, 'GET', '/records/NHM/ENT/E-1');
  t.equal(g.status, 200);
  t.equal(g.body.data.decimalLatitude, 51.5);
  t.equal(g.body.version, 1);

  const noMatch = await call(gw, 'PUT', '/records/NHM/ENT/E-1', { json: rec('E-1', { recordedBy: 'X' }) });
  isProblem(t, noMatch, 428, 'PRECONDITION_REQUIRED');

  const u = await call(gw, 'PUT', '/records/NHM/ENT/E-1', { json: rec('E-1', { recordedBy: 'C. Darwin' }), headers: { 'if-match': '"1"' } });
  t.equal(u.status, 200);
  t.equal(u.headers.get('etag'), '"2"');
  t.equal(u.body.data.recordedBy, 'C. Darwin');
  t.equal(u.body.data.eventDate, undefined, 'PUT replaces the data');

  const stale = await call(gw, 'PUT', '/records/NHM/ENT/E-1', { json: rec('E-1', { recordedBy: 'lost update' }), headers: { 'if-match': '"1"' } });
  isProblem(t, stale, 412, 'VERSION_CONFLICT');
  t.equal((await call(gw, 'GET', '/records/NHM/ENT/E-1')).body.data.recordedBy, 'C. Darwin', 'the stale write changed nothing');

  const rename = await call(gw, 'PUT', '/records/NHM/ENT/E-1', { json: rec('E-2'), headers: { 'if-match': '"2"' } });
  t.same(isProblem(t, rename, 422, 'INVALID_RECORD'), ['/data/catalogNumber']);

  const noReason = await call(gw, 'DELETE', '/records/NHM/ENT/E-1', { headers: { 'if-match': '"2"' } });
  t.same(isProblem(t, noReason, 400, 'INVALID_REQUEST'), ['/query/reason']);
  const del = await call(gw, 'DELETE', '/records/NHM/ENT/E-1?reason=duplicate%20of%20E-7', { headers: { 'if-match': '"2"' } });
  t.equal(del.status, 200);
  t.equal(del.body.deleted.reason, 'duplicate of E-7');
  const gone = await call(gw, 'GET', '/records/NHM/ENT/E-1');
  isProblem(t, gone, 410, 'RECORD_DELETED');
  t.equal(gone.body.deleted.reason, 'duplicate of E-7');
  t.equal((await call(gw, 'GET', '/records?scientificName=Apis%20mellifera&catalogNumber=E-1')).status, 400, 'catalogNumber is not a search filter');
  const found = await call(gw, 'GET', '/records?recordedBy=C.%20Darwin&count=true');
  t.equal(found.body.total, 0, 'a deleted record leaves the indexes');

  const audit = await call(gw, 'GET', '/records/NHM/ENT/E-1/audit');
  t.same(
    audit.body.items.map((e: { action: string; version: number }) => [e.action, e.version]),
    [
      ['create', 1],
      ['update', 2],
      ['delete', 3],
    ],
  );
  t.same(audit.body.items[1].changes['data.recordedBy'], { after: 'C. Darwin' });
  t.same(audit.body.items[1].changes['data.eventDate'], { before: '1901-06-02' });
  t.equal(audit.body.items[2].changes.deleted.after.reason, 'duplicate of E-7');

  const long = `Ü-${'9'.repeat(126)}`;
  t.equal((await call(gw, 'POST', '/records', { json: rec(long) })).status, 201, 'a 128-character unicode catalogue number');
  t.equal((await call(gw, 'GET', `/records/NHM/ENT/${encodeURIComponent(long)}`)).body.data.catalogNumber, long, 'reads back by its path');
  t.equal((await call(gw, 'POST', '/records', { json: rec('a/b c?d#e') })).status, 201);
  t.equal((await call(gw, 'GET', `/records/NHM/ENT/${encodeURIComponent('a/b c?d#e')}`)).body.id, 'NHM/ENT/a/b c?d#e', 'slashes and URL characters in catalogue numbers');

  const again = await call(gw, 'POST', '/records', { json: rec('E-1') });
  t.equal(again.status, 201, 'a deleted catalogue number can be registered again');
  t.equal(again.body.version, 4, 'continuing its version');
});

t.test('racing writers: one create and one update win, the rest are told why', async (t) => {
  const creates = await Promise.all(Array.from({ length: 10 }, (_, i) => call(gw, 'POST', '/records', { json: rec('RACE-1', { recordedBy: `writer ${i}` }) })));
  t.same(creates.map((r) => r.status).sort(), [201, ...Array(9).fill(409)], 'one create, nine duplicates');
  const winner = creates.find((r) => r.status === 201)!.body.data.recordedBy;
  t.equal((await call(gw, 'GET', '/records/NHM/ENT/RACE-1')).body.data.recordedBy, winner, 'the stored record is the one acknowledged');
  const updates = await Promise.all(Array.from({ length: 10 }, (_, i) => call(gw, 'PUT', '/records/NHM/ENT/RACE-1', { json: rec('RACE-1', { recordedBy: `editor ${i}` }), headers: { 'if-match': '"1"' } })));
  t.same(updates.map((r) => r.status).sort(), [200, ...Array(9).fill(412)], 'one update, nine conflicts');
  const g = await call(gw, 'GET', '/records/NHM/ENT/RACE-1');
  t.equal(g.body.data.recordedBy, updates.find((r) => r.status === 200)!.body.data.recordedBy);
  t.equal(g.body.version, 2);
  t.equal((await call(gw, 'GET', '/records/NHM/ENT/RACE-1/audit')).body.items.length, 2, 'two changes, two audit entries');
});

t.test('every class of bad input: a problem document, nothing stored', async (t) => {
  const before = await count();
  const cases: [string, Parameters<typeof call>[3], number, string, string[]][] = [
    ['unknown field', { json: rec('B-1', { colour: 'red' }) }, 422, 'INVALID_RECORD', ['/data/colour']],
    ['wrong type', { json: rec('B-2', { decimalLatitude: '51.5', individualCount: 2.5 }) }, 422, 'INVALID_RECORD', ['/data/decimalLatitude', '/data/individualCount']],
    ['bad date', { json: rec('B-3', { eventDate: '2001-02-30' }) }, 422, 'INVALID_RECORD', ['/data/eventDate']],
    ['bad date (not a date)', { json: rec('B-4', { eventDate: 'last Tuesday' }) }, 422, 'INVALID_RECORD', ['/data/eventDate']],
    ['interval backwards', { json: rec('B-5', { eventDate: '2001-05-01/2001-04-01' }) }, 422, 'INVALID_RECORD', ['/data/eventDate']],
    ['latitude out of range', { json: rec('B-6', { decimalLatitude: 90.5, decimalLongitude: -181 }) }, 422, 'INVALID_RECORD', ['/data/decimalLatitude', '/data/decimalLongitude']],
    ['missing required fields', { json: { data: { institutionCode: 'NHM', collectionCode: 'ENT', catalogNumber: 'B-7' } } }, 422, 'INVALID_RECORD', ['/data/basisOfRecord', '/data/scientificName']],
    ['control character in an identifier', { json: rec('B-8\u0000x') }, 422, 'INVALID_RECORD', ['/data/catalogNumber']],
    ['unknown top-level field', { json: { ...rec('B-9'), extra: 1 } }, 400, 'INVALID_REQUEST', ['/body/extra']],
    ['media link of the wrong shape', { json: { ...rec('B-10'), media: [{ bucket: 'b' }] } }, 400, 'INVALID_REQUEST', ['/body/media/0/key', '/body/media/0/role']],
    ['malformed JSON', { body: '{"data": {"catalogNumber": ', headers: { 'content-type': 'application/json' } }, 400, 'MALFORMED_JSON', []],
    ['oversized body', { json: rec('B-11', { occurrenceRemarks: 'x'.repeat(300 * 1024) }) }, 413, 'BODY_TOO_LARGE', []],
    ['not JSON at all', { body: 'catalogNumber=B-12', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 415, 'UNSUPPORTED_MEDIA_TYPE', []],
  ];
  for (const [what, opts, status, code, pointers] of cases) {
    const r = await call(gw, 'POST', '/records', opts);
    t.same(isProblem(t, r, status, code).sort(), [...pointers].sort(), `${what}: field errors`);
  }
  t.ok((await call(gw, 'POST', '/records', { json: rec('DUP-1') })).status === 201);
  const dup = await call(gw, 'POST', '/records', { json: rec('DUP-1', { recordedBy: 'someone else' }) });
  t.same(isProblem(t, dup, 409, 'DUPLICATE_RECORD'), ['/data/catalogNumber'], 'duplicate catalogue number');
  t.equal((await call(gw, 'GET', '/records/NHM/ENT/DUP-1')).body.data.recordedBy, undefined, 'the first record is untouched');
  t.equal(await count(), before + 1, 'only the one good record was stored');
  for (const n of ['B-1', 'B-2', 'B-3', 'B-6', 'B-11']) t.equal((await call(gw, 'GET', `/records/NHM/ENT/${n}`)).status, 404, `${n} not stored`);
  // The same catalogue number in another collection is another record.
  t.equal((await call(gw, 'POST', '/records', { json: { data: { ...rec('DUP-1').data, collectionCode: 'BOT' } } })).status, 201);
});

t.test('roles: readonly reads and exports, readwrite changes records, admin changes the schema', async (t) => {
  t.equal((await call(gw, 'POST', '/records', { json: rec('R-1'), as: WRITER })).status, 201, 'readwrite creates');
  t.equal((await call(gw, 'POST', '/records', { json: rec('R-2'), as: READER })).status, 403, 'readonly cannot create');
  t.equal((await call(gw, 'GET', '/records/NHM/ENT/R-2')).status, 404, 'and nothing was stored');
  t.equal((await call(gw, 'GET', '/records/NHM/ENT/R-1', { as: READER })).status, 200, 'readonly reads');
  t.equal((await call(gw, 'GET', '/export?format=csv', { as: READER })).status, 200, 'readonly exports');
  t.equal((await call(gw, 'POST', '/events', { json: { type: 'accession', records: ['NHM/ENT/R-1'] }, as: READER })).status, 403, 'readonly cannot run workflow');
  t.equal((await call(gw, 'GET', '/records', { as: null })).status, 401, 'no credentials');
  t.equal((await call(gw, 'GET', '/records', { as: [READER[0], 'wrong-secret-000'] })).status, 401, 'wrong secret');

  const schema = (await call(gw, 'GET', '/schema', { as: READER })).body;
  t.ok(schema.properties.scientificName, 'the Darwin Core default');
  const custom = { ...schema, properties: { ...schema.properties, drawer: { type: 'integer', minimum: 1 } } };
  t.equal((await call(gw, 'PUT', '/schema', { json: custom, as: WRITER })).status, 403, 'readwrite cannot change the schema');
  const bad = await call(gw, 'PUT', '/schema', { json: { type: 'object', properties: { catalogNumber: { type: 'string' } } } });
  t.equal(bad.status, 422);
  t.equal(bad.body.code, 'INVALID_SCHEMA');
  t.ok(bad.body.errors.some((e: { detail: string }) => /institutionCode/.test(e.detail)), 'says what is missing');
  t.equal((await call(gw, 'PUT', '/schema', { json: custom })).status, 200, 'admin changes the schema');
  t.equal((await call(gw, 'POST', '/records', { json: rec('S-1', { drawer: 4 }) })).status, 201, 'the new field is accepted');
  const zero = await call(gw, 'POST', '/records', { json: rec('S-2', { drawer: 0 }) });
  t.same(isProblem(t, zero, 422, 'INVALID_RECORD'), ['/data/drawer'], 'and validated');
  t.equal((await call(gw, 'PUT', '/schema', { json: schema })).status, 200, 'back to Darwin Core');
  t.same(isProblem(t, await call(gw, 'POST', '/records', { json: rec('S-3', { drawer: 4 }) }), 422, 'INVALID_RECORD'), ['/data/drawer']);
});

t.test('media links to objects stored over S3: size, checksum, tier; broken once deleted', async (t) => {
  const s3 = s3Client(gw);
  t.teardown(() => s3.destroy());
  await s3.send(new CreateBucketCommand({ Bucket: 'specimens' }));
  const image = Buffer.alloc(70_000, 7);
  await s3.send(new PutObjectCommand({ Bucket: 'specimens', Key: 'ent/E-9/dorsal.tif', Body: image, ContentType: 'image/tiff' }));
  await s3.send(new PutObjectCommand({ Bucket: 'specimens', Key: 'ent/E-9/label.jpg', Body: 'label' }));
  const media = [
    { bucket: 'specimens', key: 'ent/E-9/dorsal.tif', role: 'image' },
    { bucket: 'specimens', key: 'ent/E-9/label.jpg', role: 'label' },
  ];
  const missing = await call(gw, 'POST', '/records', { json: { ...rec('E-9'), media: [...media, { bucket: 'specimens', key: 'ent/E-9/none.ply', role: '3d' }] } });
  t.same(isProblem(t, missing, 422, 'BROKEN_MEDIA_LINK'), ['/media/2'], 'a link to nothing is refused');
  t.equal((await call(gw, 'GET', '/records/NHM/ENT/E-9')).status, 404, 'and nothing stored');

  const c = await call(gw, 'POST', '/records', { json: { ...rec('E-9'), media } });
  t.equal(c.status, 201);
  const [dorsal, label] = c.body.media;
  t.equal(dorsal.size, image.length);
  t.equal(dorsal.etag, `"${(await import('node:crypto')).createHash('md5').update(image).digest('hex')}"`);
  t.equal(dorsal.sha256, (await import('node:crypto')).createHash('sha256').update(image).digest('hex'));
  t.equal(dorsal.tier, 'replicated');
  t.equal(dorsal.contentType, 'image/tiff');
  t.equal(dorsal.broken, false);
  t.equal(label.role, 'label');

  // FLOWS's issue log, as an operator reads it.
  const linkIssues = async () => {
    const res = await fetch(`${gw.adminUrl}/flows/issues?kind=broken-link`, { headers: { authorization: `Basic ${Buffer.from(`${READER[0]}:${READER[1]}`).toString('base64')}` } });
    t.equal(res.status, 200);
    return ((await res.json()) as { issues: { subject: string; bucket: string; key: string; state: string; detail: string }[] }).issues;
  };
  t.same(await linkIssues(), [], 'no broken link while every object is stored');

  await s3.send(new DeleteObjectCommand({ Bucket: 'specimens', Key: 'ent/E-9/label.jpg' }));
  let g = await call(gw, 'GET', '/records/NHM/ENT/E-9');
  t.equal(g.body.media[0].broken, false);
  t.equal(g.body.media[1].broken, true, 'a deleted object shows as a broken link');
  t.equal(g.body.media[1].size, undefined);
  let [issue] = await linkIssues();
  t.match(issue, { subject: 'specimens/ent/E-9/label.jpg', bucket: 'specimens', key: 'ent/E-9/label.jpg', state: 'open' }, 'and FLOWS reports it');
  t.match(issue?.detail, /NHM\/ENT\/E-9/, 'naming the record that links it');
  const broken = await call(gw, 'GET', '/media/broken', { as: READER });
  t.same(broken.body.broken, [{ bucket: 'specimens', key: 'ent/E-9/label.jpg', role: 'label', record: 'NHM/ENT/E-9' }], 'listed for FLOWS');

  await s3.send(new PutObjectCommand({ Bucket: 'specimens', Key: 'ent/E-9/label.jpg', Body: 'label again' }));
  g = await call(gw, 'GET', '/records/NHM/ENT/E-9');
  t.equal(g.body.media[1].broken, false, 'stored again: the link works');
  t.equal((await linkIssues())[0]?.state, 'resolved', 'and the issue resolves itself');

  await s3.send(new DeleteObjectCommand({ Bucket: 'specimens', Key: 'ent/E-9/label.jpg' }));
  t.equal((await call(gw, 'GET', '/media/broken')).body.broken.length, 1, 'deleted again: a walk over the links finds it');
  t.equal((await linkIssues())[0]?.state, 'open', 'and the issue opens again');

  const fixed = await call(gw, 'PUT', '/records/NHM/ENT/E-9', { json: { ...rec('E-9'), media: [media[0]] }, headers: { 'if-match': g.headers.get('etag')! } });
  t.equal(fixed.status, 200);
  t.same((await call(gw, 'GET', '/media/broken')).body.broken, [], 'unlinking clears it');
  [issue] = await linkIssues();
  t.equal(issue?.state, 'resolved', 'and the walk resolves the issue of an object no record links any more');
});

t.test('OpenAPI document generated from the route schemas', async (t) => {
  const r = await call(gw, 'GET', '/openapi.json', { as: null });
  t.equal(r.status, 200);
  const doc = r.body;
  t.equal(doc.openapi, '3.1.0');
  for (const [path, method] of [
    ['/records', 'post'],
    ['/records', 'get'],
    ['/records/{institutionCode}/{collectionCode}/{catalogNumber}', 'put'],
    ['/records/{institutionCode}/{collectionCode}/{catalogNumber}/audit', 'get'],
    ['/events', 'post'],
    ['/import', 'post'],
    ['/export', 'get'],
    ['/schema', 'put'],
    ['/media/broken', 'get'],
  ] as const) {
    t.ok(doc.paths[path]?.[method], `${method.toUpperCase()} ${path} documented`);
  }
  const search = doc.paths['/records'].get.parameters.map((p: { name: string }) => p.name);
  for (const p of ['scientificName', 'scientificName.prefix', 'eventDate.from', 'decimalLatitude.to', 'cursor', 'limit', 'sort']) t.ok(search.includes(p), `search parameter ${p}`);
  t.equal(doc.paths['/schema'].put.description, 'Needs the admin role.');
  t.ok(doc.components.schemas.RecordData.properties.decimalLatitude, 'the collection schema in force');
  // A parameter the document does not list is refused by the same schema.
  const r2 = await call(gw, 'GET', '/records?colour=red');
  t.equal(r2.status, 400);
  t.same(r2.body.errors.map((e: { pointer: string }) => e.pointer), ['/query/colour']);
});
