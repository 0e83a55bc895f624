// A crash in the middle of a bulk import: the gateway is SIGKILLed while an
// import streams in. After a restart every record that was stored is intact
// and indexed (indexes committed in the same batch), and re-running the
// import completes it without duplicates.
import t from 'tap';
import { removeDir } from '../helpers/gateway.js';
import { call, generate, idOfData, ndjsonOf, startRecodeGateway } from './helpers.js';

const N = 20_000;
const rows = generate(N, 99);
const byId = new Map(rows.map((d) => [idOfData(d), d]));
const lines = ndjsonOf(rows).split('\n');

let gw = await startRecodeGateway();
const dataDir = gw.dataDir;
t.teardown(async () => {
  await gw.stop();
  await removeDir(dataDir);
});

const stored = async () => ((await call(gw, 'GET', '/collections')).body.collections as { records: number }[]).reduce((n, c) => n + c.records, 0);

t.test('SIGKILL mid-import, restart, re-run', async (t) => {
  // Feed the import slowly: 500 lines every 100 ms (4 s in all), so the kill lands mid-stream even on a busy host.
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (sent >= lines.length) return controller.close();
      await new Promise((r) => setTimeout(r, 100));
      controller.enqueue(Buffer.from(lines.slice(sent, sent + 500).join('\n') + '\n'));
      sent += 500;
    },
  });
  const importing = call(gw, 'POST', '/import', { body, headers: { 'content-type': 'application/x-ndjson' } }).then(
    (r) => r.status,
    (err: Error) => err.message,
  );
  const deadline = Date.now() + 20_000;
  while ((await stored()) < 3000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await gw.kill();
  t.type(await importing, 'string', 'the import was cut off');
  t.ok(sent < lines.length, `killed after ${sent} of ${N} lines were sent`);

  gw = await startRecodeGateway(dataDir);
  const n = await stored();
  t.ok(n >= 3000 && n < N, `${n} records survived the crash`);

  // Every stored record is intact and in every index it belongs to.
  const all: { id: string; data: Record<string, unknown> }[] = [];
  for (let cursor: string | undefined, i = 0; i < 100; i++) {
    const r = await call(gw, 'GET', `/records?limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
    all.push(...r.body.items);
    cursor = r.body.next;
    if (!cursor) break;
  }
  t.equal(all.length, n, 'the collection counts agree with the records');
  t.ok(all.every((r) => JSON.stringify(r.data) === JSON.stringify(byId.get(r.id))), 'each stored record is exactly what was sent');
  const indexed = async (q: string) => (await call(gw, 'GET', `/records?${q}&count=true&limit=1&sort=index`)).body.total as number;
  t.equal(await indexed('status=registered'), n, 'the status index holds every stored record');
  t.equal(await indexed('eventDate.from=0001-01-01'), n, 'so does the date index');
  t.equal(await indexed('decimalLatitude.from=-90'), n, 'and the latitude index');
  const genus = String(all[0]!.data.genus);
  t.equal(await indexed(`genus=${genus}`), all.filter((r) => r.data.genus === genus).length, 'and the genus index, value by value');

  const rerun = await call(gw, 'POST', '/import', { body: lines.join('\n'), headers: { 'content-type': 'application/x-ndjson' } });
  t.equal(rerun.status, 200);
  t.equal(rerun.body.unchanged, n, 'records stored before the crash are not written again');
  t.equal(rerun.body.created, N - n, 'the rest are created');
  t.equal(rerun.body.failed, 0);
  t.equal(await stored(), N, 'no duplicates');
  t.equal(await indexed('status=registered'), N);
});
