// Erasure coding in the engine, over real LevelDB and real local-directory
// sites: the stripe plan, every loss pattern at 2+1 and 4+2 (each piece
// missing or corrupt, alone and in every combination the parity covers),
// range reads of stubs, and a clear failure beyond what parity covers.
import { randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { LocalDirSite, type ObjectRecord, type Site } from '../../tiering/index.js';
import { planStripes, shardBytes } from '../../tiering/erasure/layout.js';
import { removeDir, tempDir } from '../helpers/gateway.js';
import { chunksOf, metricValue, openEngine, readAll } from './helpers.js';

const blobPath = (dir: string, site: string, id: string) => join(dir, site, 'blobs', id.slice(0, 2), id);

async function codedEngine(dir: string, k: number, m: number, maxPieceSize: number) {
  const names = Array.from({ length: k + m }, (_, i) => String.fromCharCode(65 + i)); // A, B, C, …
  const hot = await LocalDirSite.open('hot', join(dir, 'hot'));
  const sites: Site[] = [];
  for (const n of names) sites.push(await LocalDirSite.open(n, join(dir, n)));
  return openEngine(dir, { hot, sites }, { geometry: { k, m, sites: names, maxPieceSize }, blockSize: 64 * 1024 });
}

/** Every set of distinct piece numbers from 0..n-1 of size 1..max. */
function lossSets(n: number, max: number): number[][] {
  const out: number[][] = [];
  const walk = (from: number, cur: number[]) => {
    if (cur.length > 0) out.push(cur);
    if (cur.length === max) return;
    for (let i = from; i < n; i++) walk(i + 1, [...cur, i]);
  };
  walk(0, []);
  return out;
}

t.test('stripe plan: shards hold about size/k bytes, pieces aligned to 8', async (t) => {
  const g = { k: 2, maxPieceSize: 65536 };
  t.same(planStripes(0, g), { pieceSize: 8, lastPieceSize: 0, stripes: 0 });
  t.same(planStripes(1, g), { pieceSize: 8, lastPieceSize: 8, stripes: 1 });
  t.same(planStripes(131072, g), { pieceSize: 65536, lastPieceSize: 65536, stripes: 1 }, 'exactly one stripe');
  t.same(planStripes(131073, g), { pieceSize: 65536, lastPieceSize: 8, stripes: 2 }, 'one byte over');
  t.same(planStripes(131071, g), { pieceSize: 65536, lastPieceSize: 65536, stripes: 1 }, 'one byte under');
  for (const size of [1, 1000, 131073, 5 * 2 ** 20, 100 * 2 ** 20 + 3]) {
    const p = planStripes(size, g);
    const total = 3 * shardBytes(p);
    t.ok(total <= 1.5 * size + 3 * 16, `${size} B: ${total} B stored across three shards (1.5x plus alignment)`);
  }
});

for (const [k, m] of [
  [2, 1],
  [4, 2],
] as const) {
  t.test(`${k}+${m}: every loss pattern the parity covers reads back right, and is counted`, async (t) => {
    const dir = await tempDir();
    t.teardown(() => removeDir(dir));
    const { engine, registry } = await codedEngine(dir, k, m, 4096);
    t.teardown(() => engine.close());
    await engine.createBucket('ec1');
    const data = randomBytes(k * 4096 * 3 + 1000); // three full stripes and a short one
    await engine.putObject('ec1', 'obj', chunksOf(data, 7000), { meta: {} });
    t.equal(await engine.stubObject('ec1', 'obj'), 'changed', 'coded, then stubbed');
    const rec: ObjectRecord = await engine.headObject('ec1', 'obj');
    t.equal(rec.tier, 'stub');
    t.same(rec.copies, [], 'no full copy left anywhere');
    t.equal(rec.layout!.shards.length, k + m);
    for (const [i, sh] of rec.layout!.shards.entries()) {
      const onDisk = await readFile(blobPath(dir, sh.site, sh.blob));
      t.equal(onDisk.length, shardBytes(rec.layout!), `shard ${i} on ${sh.site} has the planned size`);
      if (i < k) t.ok(onDisk.subarray(0, 4096).equals(data.subarray(i * 4096, (i + 1) * 4096)), `shard ${i} is the object's own bytes (systematic)`);
    }
    const originals = await Promise.all(rec.layout!.shards.map((sh) => readFile(blobPath(dir, sh.site, sh.blob))));
    const restore = () => Promise.all(rec.layout!.shards.map((sh, i) => writeFile(blobPath(dir, sh.site, sh.blob), originals[i]!)));
    let patterns = 0;
    for (const lost of lossSets(k + m, m)) {
      for (const how of ['deleted', 'corrupt'] as const) {
        for (const i of lost) {
          const sh = rec.layout!.shards[i]!;
          if (how === 'deleted') await rm(blobPath(dir, sh.site, sh.blob));
          else {
            const bad = Buffer.from(originals[i]!);
            bad[bad.length - 3] = bad[bad.length - 3]! ^ 0x5a; // in the last (short) stripe
            bad[100] = bad[100]! ^ 0x01; // and in the first
            await writeFile(blobPath(dir, sh.site, sh.blob), bad);
          }
        }
        const counted = () => Promise.all(lost.map((i) => metricValue(registry, 'valentine_checksum_failures_total', { site: rec.layout!.shards[i]!.site })));
        const failuresBefore = (await counted()).reduce((a, b) => a + b, 0);
        const whole = await readAll(engine.readObject(rec));
        t.ok(whole.equals(data), `pieces ${lost.join('+')} ${how}: whole read correct`);
        const start = 4096 * k - 10;
        const part = await readAll(engine.readObject(rec, { start, end: data.length - 5 }));
        t.ok(part.equals(data.subarray(start, data.length - 5)), `pieces ${lost.join('+')} ${how}: range across stripe borders correct`);
        const failuresAfter = (await counted()).reduce((a, b) => a + b, 0);
        // The healthy path reads data pieces only; damaged parity is the scrub's to find.
        if (lost.some((i) => i < k)) t.ok(failuresAfter > failuresBefore, `pieces ${lost.join('+')} ${how}: damage counted`);
        else t.equal(failuresAfter, failuresBefore, `pieces ${lost.join('+')} ${how}: parity untouched by a healthy read`);
        await restore();
        patterns++;
      }
    }
    t.equal(patterns, 2 * lossSets(k + m, m).length);
    // One more loss than parity covers: a clear error, never wrong bytes.
    for (let i = 0; i <= m; i++) await rm(blobPath(dir, rec.layout!.shards[i]!.site, rec.layout!.shards[i]!.blob));
    await t.rejects(readAll(engine.readObject(rec)), { code: 'NO_GOOD_COPY' }, `${m + 1} pieces lost: NO_GOOD_COPY`);
    await engine.deleteObject('ec1', 'obj');
  });
}

t.test('range reads of a stub touch only the stripes they cover', async (t) => {
  const dir = await tempDir();
  t.teardown(() => removeDir(dir));
  const { engine } = await codedEngine(dir, 2, 1, 4096);
  t.teardown(() => engine.close());
  await engine.createBucket('ec1');
  const data = randomBytes(8192 * 10);
  await engine.putObject('ec1', 'r', chunksOf(data), { meta: {} });
  await engine.stubObject('ec1', 'r');
  const rec = await engine.headObject('ec1', 'r');
  // Destroy every stripe but the fourth in both data shards: a read inside stripe 3 still succeeds.
  for (const sh of rec.layout!.shards.slice(0, 2)) {
    const p = blobPath(dir, sh.site, sh.blob);
    const buf = await readFile(p);
    buf.fill(0, 0, 3 * 4096);
    buf.fill(0, 4 * 4096);
    await writeFile(p, buf);
  }
  for (const [start, end] of [
    [3 * 8192, 4 * 8192],
    [3 * 8192 + 1, 3 * 8192 + 2],
    [3 * 8192 + 4000, 3 * 8192 + 5000],
  ] as const) {
    t.ok((await readAll(engine.readObject(rec, { start, end }))).equals(data.subarray(start, end)), `bytes ${start}-${end} read from stripe 3 alone`);
  }
  await t.rejects(readAll(engine.readObject(rec, { start: 0, end: 10 })), { code: 'NO_GOOD_COPY' }, 'stripe 0 really is gone');
});

t.test('a coded object whose hot copy is lost reads from its shards', async (t) => {
  const dir = await tempDir();
  t.teardown(() => removeDir(dir));
  const { engine } = await codedEngine(dir, 2, 1, 65536);
  t.teardown(() => engine.close());
  await engine.createBucket('ec1');
  const data = randomBytes(500_000);
  await engine.putObject('ec1', 'h', chunksOf(data), { meta: {} });
  t.equal(await engine.codeObject('ec1', 'h'), 'changed');
  const rec = await engine.headObject('ec1', 'h');
  t.equal(rec.tier, 'coded');
  t.same(rec.copies, ['hot'], 'replicas on A and B removed; hot copy kept');
  const hotPath = blobPath(dir, 'hot', rec.segments[0]!.blob);
  const hot = await readFile(hotPath);
  hot[300_000] = hot[300_000]! ^ 0xff;
  await writeFile(hotPath, hot);
  t.ok((await readAll(engine.readObject(rec))).equals(data), 'hot copy corrupt mid-way: the rest comes from shards');
  await rm(hotPath);
  t.ok((await readAll(engine.readObject(rec, { start: 1, end: 499_999 }))).equals(data.subarray(1, 499_999)), 'hot copy gone: shards serve');
});

t.test('a shard site down: coding refuses and keeps the replicas', async (t) => {
  const dir = await tempDir();
  t.teardown(() => removeDir(dir));
  const { engine } = await codedEngine(dir, 2, 1, 65536);
  t.teardown(() => engine.close());
  await engine.createBucket('ec1');
  const data = randomBytes(200_000);
  const rec = await engine.putObject('ec1', 'd', chunksOf(data), { meta: {} });
  const cDir = join(dir, 'C');
  await rm(cDir, { recursive: true }); // site C's disk is gone: it can no longer take writes
  await t.rejects(engine.codeObject('ec1', 'd'), { code: 'SITE_UNAVAILABLE' });
  const after = await engine.headObject('ec1', 'd');
  t.equal(after.tier, 'replicated', 'still replicated');
  for (const site of ['A', 'B']) t.ok((await readFile(blobPath(dir, site, rec.segments[0]!.blob))).equals(data), `replica on ${site} kept`);
});
