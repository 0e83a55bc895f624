// Workflow events on records and groups of records: allowed transitions
// apply to all, a refused one changes nothing, and the audit trail shows
// who, when and what changed.
import t from 'tap';
import { removeDir } from '../helpers/gateway.js';
import { WRITER, call, startRecodeGateway } from './helpers.js';

const gw = await startRecodeGateway();
t.teardown(async () => {
  await gw.stop();
  await removeDir(gw.dataDir);
});

const ids = ['S-1', 'S-2', 'S-3', 'S-4', 'S-5'].map((c) => `NHM/ZOO/${c}`);
for (const id of ids) {
  const catalogNumber = id.split('/')[2];
  const r = await call(gw, 'POST', '/records', { json: { data: { institutionCode: 'NHM', collectionCode: 'ZOO', catalogNumber, scientificName: 'Felis catus', basisOfRecord: 'PreservedSpecimen' } } });
  if (r.status !== 201) throw new Error(r.text);
}
const status = async (id: string) => (await call(gw, 'GET', `/records/${id}`)).body.status as string;
const event = (json: Record<string, unknown>) => call(gw, 'POST', '/events', { json, as: WRITER });

t.test('acquisition → accession → loan → return, and deaccession', async (t) => {
  t.equal((await event({ type: 'acquisition', records: ids.slice(0, 2) })).status, 201);
  t.same(await Promise.all(ids.map(status)), ['acquired', 'acquired', 'registered', 'registered', 'registered']);
  t.equal((await event({ type: 'accession', records: ids })).status, 201, 'accession from acquired or registered');
  t.same(await Promise.all(ids.map(status)), Array(5).fill('accessioned'));

  const noBorrower = await event({ type: 'loan', records: ids.slice(0, 3) });
  t.equal(noBorrower.status, 400);
  t.same(noBorrower.body.errors.map((e: { pointer: string }) => e.pointer).sort(), ['/body/borrower', '/body/dueDate']);

  const loan = await event({ type: 'loan', records: ids.slice(0, 3), borrower: 'Royal Botanic Gardens, Kew', dueDate: '2027-06-30', note: 'for imaging' });
  t.equal(loan.status, 201);
  t.equal(loan.body.by, WRITER[0]);
  const onLoan = await call(gw, 'GET', `/records/${ids[0]}`);
  t.equal(onLoan.body.status, 'on-loan');
  t.same(onLoan.body.loan, { event: loan.body.id, borrower: 'Royal Botanic Gardens, Kew', dueDate: '2027-06-30' });
  t.same((await call(gw, 'GET', `/events/${loan.body.id}`)).body.records, ids.slice(0, 3), 'the loan covers the group');
  t.equal((await call(gw, 'GET', '/records?status=on-loan&count=true')).body.total, 3, 'searchable by state');

  // A group with one refusal changes nothing.
  const mixed = await event({ type: 'loan', records: [ids[3], ids[0]], borrower: 'X', dueDate: '2027-01-01' });
  t.equal(mixed.status, 409);
  t.equal(mixed.body.code, 'TRANSITION_REFUSED');
  t.same(mixed.body.errors.map((e: { pointer: string }) => e.pointer), ['/records/1']);
  t.match(mixed.body.errors[0].detail, /on loan/);
  t.equal(await status(ids[3]!), 'accessioned', 'the allowed record was not loaned either');

  const notOnLoan = await event({ type: 'return', records: [ids[3]] });
  t.equal(notOnLoan.status, 409);
  t.match(notOnLoan.body.errors[0].detail, /only a specimen on loan can be returned/);
  const deacOnLoan = await event({ type: 'deaccession', records: [ids[0]] });
  t.equal(deacOnLoan.status, 409, 'no deaccession while on loan');

  t.equal((await event({ type: 'return', records: ids.slice(0, 3) })).status, 201);
  const back = await call(gw, 'GET', `/records/${ids[0]}`);
  t.equal(back.body.status, 'accessioned');
  t.equal(back.body.loan, undefined);

  t.equal((await event({ type: 'deaccession', records: [ids[4]], note: 'destroyed by pests' })).status, 201);
  const deacLoan = await event({ type: 'loan', records: [ids[4]], borrower: 'X', dueDate: '2027-01-01' });
  t.equal(deacLoan.status, 409);
  t.match(deacLoan.body.errors[0].detail, /deaccessioned specimen cannot take a loan/);
  t.equal((await event({ type: 'accession', records: [ids[4]] })).status, 409, 'deaccession is final');

  const unknown = await event({ type: 'accession', records: ['NHM/ZOO/NOPE', 'not-an-id'] });
  t.equal(unknown.status, 400, 'an unparseable id is a bad request');
  const missing = await event({ type: 'accession', records: ['NHM/ZOO/NOPE'] });
  t.equal(missing.status, 409);
  t.match(missing.body.errors[0].detail, /no such record/);
});

t.test('audit trail: append-only, who, when, before and after', async (t) => {
  const r = await call(gw, 'GET', `/records/${ids[0]}/audit`);
  t.equal(r.status, 200);
  const items = r.body.items as { action: string; by: string; at: string; event?: { type: string }; changes?: Record<string, { before?: unknown; after?: unknown }> }[];
  t.same(items.map((e) => e.event?.type ?? e.action), ['create', 'acquisition', 'accession', 'loan', 'return']);
  t.same(items[3]!.changes!.status, { before: 'accessioned', after: 'on-loan' });
  t.equal((items[3]!.changes!.loan!.after as { borrower: string }).borrower, 'Royal Botanic Gardens, Kew');
  t.same(items[4]!.changes!.status, { before: 'on-loan', after: 'accessioned' });
  t.equal(items[1]!.by, WRITER[0]);
  t.ok(items.every((e, i) => i === 0 || e.at >= items[i - 1]!.at), 'in time order');
  const paged = await call(gw, 'GET', `/records/${ids[0]}/audit?limit=2`);
  t.equal(paged.body.items.length, 2);
  const rest = await call(gw, 'GET', `/records/${ids[0]}/audit?cursor=${paged.body.next}`);
  t.same([...paged.body.items, ...rest.body.items].map((e: { seq: string }) => e.seq), r.body.items.map((e: { seq: string }) => e.seq), 'paging loses nothing');
  t.equal((await call(gw, 'GET', '/records/NHM/ZOO/NOPE/audit')).status, 404);
});

t.test('registered, the state the status index leaves out, is still searched and counted', async (t) => {
  const create = (inst: string, catalogNumber: string) =>
    call(gw, 'POST', '/records', { json: { data: { institutionCode: inst, collectionCode: 'BOT', catalogNumber, scientificName: 'Rosa canina', basisOfRecord: 'PreservedSpecimen' } } });
  for (const c of ['R-1', 'R-2', 'R-3', 'R-4']) t.equal((await create('KEW', c)).status, 201);
  t.equal((await create('RBGE', 'R-1')).status, 201);
  t.equal((await event({ type: 'acquisition', records: ['KEW/BOT/R-1'] })).status, 201);
  t.equal((await call(gw, 'DELETE', '/records/KEW/BOT/R-2?reason=duplicate', { headers: { 'if-match': '"1"' } })).status, 200);
  const registered = ['KEW/BOT/R-3', 'KEW/BOT/R-4', 'RBGE/BOT/R-1'];
  const search = async (qs: string) => {
    const r = await call(gw, 'GET', `/records?${qs}&count=true`);
    return { total: r.body.total as number, ids: r.body.items.map((i: { id: string }) => i.id) as string[] };
  };
  t.same(await search('status=registered'), { total: 3, ids: registered }, 'every registered record, in catalogue order');
  t.same(await search('status=registered&sort=index'), { total: 3, ids: registered });
  t.same(await search('status=registered&institutionCode=KEW'), { total: 2, ids: registered.slice(0, 2) }, 'counted within an institution');
  t.same(await search('status=registered&collectionCode=BOT'), { total: 3, ids: registered }, 'and within a collection');
  t.same(await search('status.prefix=reg'), { total: 3, ids: registered }, 'a prefix that admits registered');
  t.same(await search('status.prefix=ac&sort=index'), { total: 5, ids: [...ids.slice(0, 4), 'KEW/BOT/R-1'] }, 'other states still come from the index (accessioned, then acquired)');
  t.same(await search('status=registered&scientificName=Rosa%20canina'), { total: 3, ids: registered }, 'another filter drives the walk');
  t.same(await search('status=acquired'), { total: 1, ids: ['KEW/BOT/R-1'] });
});
