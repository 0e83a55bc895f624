// The per-handle object reader against a real engine: sequential, shuffled
// and jumping reads all return the object's bytes; a file whose copies are
// all bad fails every read (never a silent end of file). The scratch copy of
// a file being written keeps its bytes right in memory and in a temp file.
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import t, { type Test } from 'tap';
import { ObjectReader, Scratch } from '../../fs-mount/handles.js';
import { MemorySite, type Engine } from '../../tiering/index.js';
import { removeDir, tempDir } from '../helpers/gateway.js';
import { chunksOf, localSites, openEngine } from '../tiering/helpers.js';

const CHUNK = 128 * 1024;

/** An engine on local site directories (small blocks: many per object), with bucket 'rdr'; closed and removed at teardown. */
async function engineOnDisk(t: Test): Promise<Engine> {
  const dir = await tempDir();
  t.teardown(() => removeDir(dir));
  const { engine } = await openEngine(dir, await localSites(dir), { blockSize: 256 * 1024 });
  t.teardown(() => engine.close());
  await engine.createBucket('rdr');
  return engine;
}

t.test('reads in order, shuffled and jumping return the right bytes', async (t) => {
  const engine = await engineOnDisk(t);
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

t.test('readers sharing the engine\'s block buffers each return their own bytes', async (t) => {
  // A reader hands blocks back once they leave its window, and the next read
  // of any reader may be read into them: one handed back too early would
  // show the other object's bytes here.
  const engine = await engineOnDisk(t);
  const objects = [randomBytes(6 * 1024 * 1024 + 3), randomBytes(5 * 1024 * 1024 + 999)];
  const readers = await Promise.all(
    objects.map(async (data, i) => new ObjectReader(engine, await engine.putObject('rdr', `k${i}`, chunksOf(data), { meta: {} }))),
  );
  t.teardown(() => Promise.all(readers.map((r) => r.close())));
  const check = async (i: number, offset: number) => {
    const buf = Buffer.alloc(CHUNK);
    const n = await readers[i]!.read(buf, CHUNK, offset);
    const want = objects[i]!.subarray(offset, offset + CHUNK);
    return n === want.length && buf.subarray(0, n).equals(want);
  };
  let ok = true;
  for (let off = 0; off < objects[0]!.length; off += CHUNK) {
    // Both in step, each also re-reading a little behind itself (still inside its window).
    const back = Math.max(0, off - 3 * CHUNK);
    const r = await Promise.all([check(0, off), check(1, off % objects[1]!.length), check(0, back), check(1, back % objects[1]!.length)]);
    ok &&= r.every(Boolean);
  }
  t.ok(ok, 'every read returned its own object\'s bytes');
  await readers[0]!.close();
  t.ok(await check(1, 0) && (await check(0, 1000)), 'after a close and a restart, still right');
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

t.test('scratch copy: small files stay in memory, larger ones move to a temp file, bytes always right', async (t) => {
  const dir = await tempDir();
  t.teardown(() => removeDir(dir));
  const all = async (s: Scratch) => {
    const parts: Buffer[] = [];
    for await (const c of s.body()) parts.push(c);
    return Buffer.concat(parts);
  };
  const small = new Scratch(dir);
  await small.write(Buffer.from('hello world'), 11, 0);
  await small.write(Buffer.from('W'), 1, 6);
  await small.truncate(9);
  await small.write(Buffer.from('!'), 1, 12); // sparse: zeros in the gap
  t.same(await all(small), Buffer.from('hello Wor\0\0\0!'), 'writes, truncate and a sparse write');
  t.same(await readdir(dir), [], 'a small file makes no temp file');
  await small.discard();

  // Random writes and truncates against a plain buffer, crossing the memory limit.
  const big = new Scratch(dir);
  let model = Buffer.alloc(0);
  const rnd = (n: number) => Math.floor(Math.random() * n);
  for (let i = 0; i < 60; i++) {
    if (i % 10 === 9) {
      const size = rnd(400 * 1024);
      await big.truncate(size);
      model = size <= model.length ? model.subarray(0, size) : Buffer.concat([model, Buffer.alloc(size - model.length)]);
    } else {
      const pos = rnd(i < 30 ? 100 * 1024 : 500 * 1024);
      const data = randomBytes(1 + rnd(64 * 1024));
      await big.write(data, data.length, pos);
      if (pos + data.length > model.length) model = Buffer.concat([model, Buffer.alloc(pos + data.length - model.length)]);
      data.copy(model, pos);
    }
    t.equal(big.size, model.length);
  }
  t.ok((await all(big)).equals(model), 'the body is what was written');
  const buf = Buffer.alloc(1000);
  const n = await big.read(buf, 1000, 1234);
  t.ok(buf.subarray(0, n).equals(model.subarray(1234, 2234)), 'a read in the middle');
  t.equal((await readdir(dir)).length, 1, 'past the memory limit it lives in one temp file');
  await big.discard();
  t.same(await readdir(dir), [], 'discard removes the temp file');
});
