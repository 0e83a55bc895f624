// The per-handle object reader against a real engine: sequential, shuffled
// and jumping reads all return the object's bytes; a file whose copies are
// all bad fails every read (never a silent end of file).
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { ObjectReader } from '../../fs-mount/handles.js';
import { MemorySite } from '../../tiering/index.js';
import { removeDir, tempDir } from '../helpers/gateway.js';
import { chunksOf, localSites, openEngine } from '../tiering/helpers.js';

const CHUNK = 128 * 1024;

t.test('reads in order, shuffled and jumping return the right bytes', async (t) => {
  const dir = await tempDir();
  t.teardown(() => removeDir(dir));
  const { engine } = await openEngine(dir, await localSites(dir), { blockSize: 256 * 1024 });
  t.teardown(() => engine.close());
  await engine.createBucket('rdr');
  const data = randomBytes(12 * 1024 * 1024 + 1234); // several read-aheads long
  const rec = await engine.putObject('rdr', 'k', chunksOf(data), { meta: {} });
  const reader = new ObjectReader(engine, rec);
  t.teardown(() => reader.close());
  const check = async (offset: number, len = CHUNK) => {
    const buf = Buffer.alloc(len);
    const n = await reader.read(buf, len, offset);
    const want = data.subarray(offset, offset + len);
    return n === want.length && buf.subarray(0, n).equals(want);
  };
  let ok = true;
  for (let off = 0; off < data.length; off += CHUNK) ok &&= await check(off);
  t.ok(ok, 'sequential');
  // Kernel read-ahead can deliver a few requests out of order.
  const order = [0, 2, 1, 3, 5, 4, 7, 6, 8].map((i) => i * CHUNK);
  const results = await Promise.all(order.map((o) => check(o)));
  t.ok(results.every(Boolean), 'shuffled within the window');
  t.ok(await check(4 * 1024 * 1024 + 77, 1000), 'a jump forward');
  t.ok(await check(100, 5000), 'a jump back');
  t.ok(await check(data.length - 10, CHUNK), 'the tail is short');
  const past = Buffer.alloc(10);
  t.equal(await reader.read(past, 10, data.length + 5), 0, 'past the end is end of file');
});

t.test('when no copy can be read, every read fails', async (t) => {
  const dir = await tempDir();
  t.teardown(() => removeDir(dir));
  const sites = { hot: new MemorySite('hot'), sites: [new MemorySite('A'), new MemorySite('B')] };
  const { engine } = await openEngine(dir, sites);
  t.teardown(() => engine.close());
  await engine.createBucket('rdr');
  const rec = await engine.putObject('rdr', 'k', chunksOf(randomBytes(300_000)), { meta: {} });
  for (const s of [sites.hot, ...sites.sites]) await s.delete(rec.segments[0]!.blob);
  const reader = new ObjectReader(engine, rec);
  const buf = Buffer.alloc(CHUNK);
  await t.rejects(reader.read(buf, CHUNK, 0), { code: 'NO_GOOD_COPY' });
  await t.rejects(reader.read(buf, CHUNK, CHUNK), { code: 'NO_GOOD_COPY' }, 'the next read fails too');
});
