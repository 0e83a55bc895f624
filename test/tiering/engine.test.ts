// The engine's write and read paths against real LevelDB and real or
// in-memory sites: two-site durability policy, verified reads that move
// past bad copies, overwrite safety.
import { randomBytes } from 'node:crypto';
import { readFile, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { MemorySite } from '../../tiering/index.js';
import { removeDir, tempDir } from '../helpers/gateway.js';
import { chunksOf, localSites, metricValue, openEngine, readAll } from './helpers.js';

const blobPath = (dir: string, site: string, id: string) => join(dir, site, 'blobs', id.slice(0, 2), id);

t.test('a write lands on the hot tier and both sites before it returns', async (t) => {
  const dir = await tempDir();
  t.teardown(() => removeDir(dir));
  const { engine } = await openEngine(dir, await localSites(dir));
  t.teardown(() => engine.close());
  await engine.createBucket('b1x');
  const data = randomBytes(2_500_000);
  const rec = await engine.putObject('b1x', 'k', chunksOf(data), { meta: {} });
  t.same(rec.copies, ['hot', 'A', 'B']);
  for (const site of ['hot', 'A', 'B']) {
    t.ok((await readFile(blobPath(dir, site, rec.segments[0]!.blob))).equals(data), `${site} holds the bytes`);
  }
  t.notMatch(rec.segments[0]!.blob, /k/, 'blob named by id, not by key');
  const old = rec.segments[0]!.blob;
  const rec2 = await engine.putObject('b1x', 'k', chunksOf(Buffer.from('new')), { meta: {} });
  t.equal((await readAll(engine.readObject(rec2))).toString(), 'new');
  await t.rejects(readFile(blobPath(dir, 'A', old)), { code: 'ENOENT' }, 'superseded blob deleted after commit');
});

t.test('a corrupt or missing copy is skipped, counted, and never served', async (t) => {
  const dir = await tempDir();
  t.teardown(() => removeDir(dir));
  const { engine, registry } = await openEngine(dir, await localSites(dir), { blockSize: 64 * 1024 });
  t.teardown(() => engine.close());
  await engine.createBucket('b1x');
  const data = randomBytes(300_000);
  const rec = await engine.putObject('b1x', 'k', chunksOf(data), { meta: {} });
  const id = rec.segments[0]!.blob;
  // Flip one byte in the hot copy's third block, delete site A's copy.
  const hot = await readFile(blobPath(dir, 'hot', id));
  hot[140_000] = hot[140_000]! ^ 0xff;
  await writeFile(blobPath(dir, 'hot', id), hot);
  await rm(blobPath(dir, 'A', id));
  t.ok((await readAll(engine.readObject(rec))).equals(data), 'whole read correct from site B');
  t.ok((await readAll(engine.readObject(rec, { start: 130_000, end: 140_010 }))).equals(data.subarray(130_000, 140_010)), 'range read correct');
  t.ok((await metricValue(registry, 'valentine_checksum_failures_total', { site: 'hot' })) >= 1, 'hot mismatch counted');
  t.ok((await metricValue(registry, 'valentine_checksum_failures_total', { site: 'A' })) >= 1, 'missing A copy counted');
  // With every copy bad, the read fails instead of serving wrong bytes.
  const b = await readFile(blobPath(dir, 'B', id));
  b[140_000] = b[140_000]! ^ 1;
  await writeFile(blobPath(dir, 'B', id), b);
  await t.rejects(readAll(engine.readObject(rec)), { name: 'EngineError', code: 'NO_GOOD_COPY' }, 'no intact copy: the read fails');
});

t.test('a site down: writes fail cleanly by default, or go under-replicated when allowed', async (t) => {
  const dir = await tempDir();
  t.teardown(() => removeDir(dir));
  const hot = new MemorySite('hot');
  const a = new MemorySite('A');
  const b = new MemorySite('B');
  const strict = await openEngine(join(dir, 'strict'), { hot, sites: [a, b] });
  await strict.engine.createBucket('b1x');
  b.down = true;
  await t.rejects(strict.engine.putObject('b1x', 'k', chunksOf(randomBytes(1000)), { meta: {} }), { code: 'SITE_UNAVAILABLE' });
  await t.rejects(strict.engine.headObject('b1x', 'k'), { code: 'NO_SUCH_KEY' }, 'nothing visible');
  t.equal(hot.blobs.size + a.blobs.size, 0, 'no copy left behind');

  // A site that vanishes in the middle of a write.
  b.down = false;
  async function* vanishing() {
    yield randomBytes(2 << 20);
    a.down = true;
    yield randomBytes(2 << 20);
  }
  await t.rejects(strict.engine.putObject('b1x', 'mid', vanishing(), { meta: {} }), { code: 'SITE_UNAVAILABLE' });
  await t.rejects(strict.engine.headObject('b1x', 'mid'), { code: 'NO_SUCH_KEY' });
  a.down = false;
  t.equal(hot.blobs.size + a.blobs.size + b.blobs.size, 0, 'no copy of the failed write anywhere');
  await strict.engine.close();

  const lenient = await openEngine(join(dir, 'lenient'), { hot, sites: [a, b] }, { minReplicas: 1 });
  await lenient.engine.createBucket('b1x');
  b.down = true;
  const rec = await lenient.engine.putObject('b1x', 'k', chunksOf(Buffer.from('kept')), { meta: {} });
  t.same(rec.copies, ['hot', 'A']);
  t.equal(rec.underReplicated, true, 'marked under-replicated');
  t.equal(await metricValue(lenient.registry, 'valentine_under_replicated_writes_total'), 1);
  t.equal((await readAll(lenient.engine.readObject(rec))).toString(), 'kept');
  await lenient.engine.close();
});

t.test('refusing a body in beforeCommit leaves nothing', async (t) => {
  const dir = await tempDir();
  t.teardown(() => removeDir(dir));
  const { engine, hot, sites } = await openEngine(dir, { hot: new MemorySite('hot'), sites: [new MemorySite('A'), new MemorySite('B')] });
  t.teardown(() => engine.close());
  await engine.createBucket('b1x');
  await t.rejects(
    engine.putObject('b1x', 'k', chunksOf(Buffer.from('abc')), { meta: {}, beforeCommit: () => { throw new Error('bad digest'); } }),
    /bad digest/,
  );
  t.equal([hot, ...sites].reduce((n, s) => n + (s as MemorySite).blobs.size, 0), 0);
  await t.rejects(engine.putObject('b1x', 'short', chunksOf(Buffer.from('abc')), { meta: {}, expectedSize: 10 }), { code: 'INCOMPLETE_BODY' });
});
