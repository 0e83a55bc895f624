// Search against a brute-force filter over the same generated records:
// every page followed by its cursor, in the promised order, with totals.
import t from 'tap';
import { removeDir } from '../helpers/gateway.js';
import { call, firstDay, generate, idOfData, ndjsonOf, startRecodeGateway, type Data } from './helpers.js';

const gw = await startRecodeGateway();
t.teardown(async () => {
  await gw.stop();
  await removeDir(gw.dataDir);
});

const N = 3000;
const rows = generate(N, 42);
const imported = await call(gw, 'POST', '/import', { body: ndjsonOf(rows), headers: { 'content-type': 'application/x-ndjson' } });
t.equal(imported.body.created, N, `${N} records imported`);

type Q = Record<string, string>;

/** The brute-force answer: written from the API's documented semantics, not from its code. */
function expected(q: Q): Data[] {
  const hit = rows.filter((d) =>
    Object.entries(q).every(([k, v]) => {
      if (k === 'sort') return true;
      const [field, op] = k.split('.') as [string, string | undefined];
      const have = field === 'status' ? 'registered' : d[field];
      if (have === undefined) return false;
      if (op === 'prefix') return String(have).startsWith(v);
      if (field === 'eventDate') {
        const day = firstDay(String(have));
        return op === 'from' ? day >= v : day <= v;
      }
      if (op === 'from') return Number(have) >= Number(v);
      if (op === 'to') return Number(have) <= Number(v);
      return String(have) === v;
    }),
  );
  const byId = (a: Data, b: Data) => (idOfData(a) < idOfData(b) ? -1 : idOfData(a) > idOfData(b) ? 1 : 0);
  if (q.sort === 'eventDate') return hit.sort((a, b) => (firstDay(String(a.eventDate)) < firstDay(String(b.eventDate)) ? -1 : firstDay(String(a.eventDate)) > firstDay(String(b.eventDate)) ? 1 : byId(a, b)));
  return hit.sort(byId);
}

async function all(q: Q, limit: number): Promise<{ ids: string[]; pages: number; total: number }> {
  const ids: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  let total = -1;
  for (;;) {
    const qs = new URLSearchParams({ ...q, limit: String(limit), ...(cursor && { cursor }), ...(pages === 0 && { count: 'true' }) });
    const r = await call(gw, 'GET', `/records?${qs}`);
    if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
    if (pages === 0) total = r.body.total;
    pages++;
    t.ok(r.body.items.length <= limit);
    ids.push(...r.body.items.map((i: { id: string }) => i.id));
    cursor = r.body.next;
    if (!cursor || pages > 1000) break;
  }
  return { ids, pages, total };
}

const queries: Q[] = [
  {},
  { collectionCode: 'ENT' },
  { institutionCode: 'NHM', collectionCode: 'BOT' },
  { scientificName: 'Apis mellifera' },
  { 'scientificName.prefix': 'Bo' },
  { 'scientificName.prefix': 'Bo', sort: 'index' },
  { family: 'Apidae', country: 'Kenya' },
  { country: 'Kenya', 'decimalLatitude.from': '0', 'decimalLatitude.to': '30' },
  { 'eventDate.from': '1900-01-01', 'eventDate.to': '1950-12-31' },
  { 'eventDate.from': '1900-01-01', 'eventDate.to': '1950-12-31', sort: 'eventDate' },
  { 'decimalLatitude.from': '-10', 'decimalLatitude.to': '10', 'decimalLongitude.from': '0' },
  { 'genus.prefix': 'P', 'eventDate.from': '1990-01-01', sort: 'eventDate' },
  { recordedBy: 'C. Darwin', sort: 'index' },
  { typeStatus: 'holotype' },
  { basisOfRecord: 'FossilSpecimen', 'decimalLongitude.to': '-100.5', sort: 'index' },
  { status: 'registered', collectionCode: 'BOT', 'country.prefix': 'J' },
  { scientificName: 'No such name' },
  { 'eventDate.to': '1850-12-31', sort: 'eventDate' },
];

for (const q of queries) {
  t.test(`search ${JSON.stringify(q)}`, async (t) => {
    const want = expected(q).map(idOfData);
    const got = await all(q, 97);
    t.equal(got.total, want.length, 'total');
    if (q.sort === 'index') t.same([...got.ids].sort(), [...want].sort(), 'the same records');
    else t.same(got.ids, want, 'the same records in the same order');
    t.equal(new Set(got.ids).size, got.ids.length, 'no record twice across pages');
    t.ok(want.length > 0 || q.scientificName === 'No such name', 'the query is not vacuous');
  });
}

t.test('a page of one record and a bad cursor', async (t) => {
  const r = await call(gw, 'GET', '/records?scientificName=Apis%20mellifera&limit=1');
  t.equal(r.body.items.length, 1);
  t.ok(r.body.next);
  const other = await call(gw, 'GET', `/records?family=Apidae&cursor=${r.body.next}`);
  t.equal(other.status, 400);
  t.equal(other.body.code, 'INVALID_CURSOR');
  const junk = await call(gw, 'GET', '/records?cursor=!!!');
  t.equal(junk.body.code, 'INVALID_CURSOR');
  const badRange = await call(gw, 'GET', '/records?eventDate.from=1900');
  t.equal(badRange.status, 400);
  t.same(badRange.body.errors.map((e: { pointer: string }) => e.pointer), ['/query/eventDate.from']);
});

t.test('an update moves a record between index entries in the same batch', async (t) => {
  const d = rows.find((x) => x.scientificName === 'Apis mellifera')!;
  const [inst, coll, cat] = idOfData(d).split('/');
  const g = await call(gw, 'GET', `/records/${inst}/${coll}/${cat}`);
  const u = await call(gw, 'PUT', `/records/${inst}/${coll}/${cat}`, { json: { data: { ...d, scientificName: 'Zzz renamed' } }, headers: { 'if-match': g.headers.get('etag')! } });
  t.equal(u.status, 200);
  const before = await all({ scientificName: 'Apis mellifera' }, 500);
  t.notOk(before.ids.includes(idOfData(d)), 'gone from the old value');
  t.same((await all({ scientificName: 'Zzz renamed' }, 10)).ids, [idOfData(d)], 'found by the new one');
  t.same((await all({ 'scientificName.prefix': 'Zz' }, 10)).ids, [idOfData(d)], 'and by prefix');
});
