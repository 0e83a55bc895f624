// The Site contract, as one suite every backend runs (LocalDirSite,
// MemorySite, S3Site against more than one S3 server). `makeSite` returns a
// fresh, empty site each time; the suite closes the sites it makes.
import { createHash, randomBytes } from 'node:crypto';
import type { Test } from 'tap';
import type { BlobWriter, Site } from '../../tiering/index.js';

export const newId = () => randomBytes(16).toString('hex');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export async function put(site: Site, id: string, data: Buffer, chunk = 256 * 1024): Promise<void> {
  const w = site.createWriter(id);
  await writeAll(w, data, chunk);
  await w.commit();
}

async function writeAll(w: BlobWriter, data: Buffer, chunk = 256 * 1024): Promise<void> {
  for (let off = 0; off < data.length; off += chunk) await w.write(data.subarray(off, off + chunk));
}

export async function readBack(site: Site, id: string, blockSize = 1 << 20): Promise<Buffer | undefined> {
  const r = await site.open(id);
  if (!r) return undefined;
  try {
    const parts: Buffer[] = [];
    for (let off = 0; ; off += blockSize) {
      const b = await r.read(off, blockSize);
      parts.push(b);
      if (b.length < blockSize) break;
    }
    return Buffer.concat(parts);
  } finally {
    await r.close();
  }
}

export async function listed(site: Site): Promise<string[]> {
  const ids: string[] = [];
  for await (const id of site.list()) ids.push(id);
  return ids.sort();
}

export interface ConformanceOptions {
  /** Bytes of the "larger than one part" blob; default 20 MiB. */
  largeSize?: number;
}

export function siteConformance(t: Test, makeSite: () => Promise<Site>, opts: ConformanceOptions = {}): void {
  const fresh = async (t: Test): Promise<Site> => {
    const site = await makeSite();
    t.teardown(() => site.close());
    return site;
  };

  t.test('a committed blob reads back, stats and lists', async (t) => {
    const site = await fresh(t);
    const id = newId();
    const data = randomBytes(300_001);
    await put(site, id, data, 70_000);
    t.ok((await readBack(site, id))?.equals(data), 'bytes read back identical');
    t.same(await site.stat(id), { size: data.length }, 'stat gives the size');
    t.same(await listed(site), [id], 'listed');
  });

  t.test('ranged reads, including past the end', async (t) => {
    const site = await fresh(t);
    const id = newId();
    const data = randomBytes(100_000);
    await put(site, id, data);
    const r = (await site.open(id))!;
    t.teardown(() => r.close());
    t.ok((await r.read(12_345, 1000)).equals(data.subarray(12_345, 13_345)), 'middle range');
    t.ok((await r.read(0, 1)).equals(data.subarray(0, 1)), 'first byte');
    t.ok((await r.read(99_999, 1)).equals(data.subarray(99_999)), 'last byte');
    const tail = await r.read(99_000, 5000);
    t.equal(tail.length, 1000, 'a read across the end is short');
    t.ok(tail.equals(data.subarray(99_000)), 'and holds the tail');
    t.equal((await r.read(100_000, 10)).length, 0, 'a read at the end is empty');
    t.equal((await r.read(500_000, 10)).length, 0, 'a read past the end is empty');
    t.equal((await r.read(10, 0)).length, 0, 'a zero-length read is empty');

    const empty = newId();
    await put(site, empty, Buffer.alloc(0));
    t.same(await site.stat(empty), { size: 0 }, 'an empty blob exists with size 0');
    t.equal((await readBack(site, empty))?.length, 0, 'and reads back empty');
  });

  t.test('a blob is invisible until commit', async (t) => {
    const site = await fresh(t);
    const id = newId();
    const data = randomBytes(200_000);
    const w = site.createWriter(id);
    await writeAll(w, data);
    t.equal(await site.open(id), undefined, 'open before commit: undefined');
    t.equal(await site.stat(id), undefined, 'stat before commit: undefined');
    t.same(await listed(site), [], 'not listed before commit');
    await w.commit();
    t.ok((await readBack(site, id))?.equals(data), 'readable after commit');
    t.same(await listed(site), [id], 'listed after commit');
    await w.abort();
    t.ok((await readBack(site, id))?.equals(data), 'abort after commit leaves the blob alone');
  });

  t.test('abort leaves nothing, small or large', async (t) => {
    const site = await fresh(t);
    const small = newId();
    const w1 = site.createWriter(small);
    await writeAll(w1, randomBytes(50_000));
    await w1.abort();
    await w1.abort();
    const large = newId();
    const w2 = site.createWriter(large);
    await writeAll(w2, randomBytes(opts.largeSize ?? 20 << 20), 1 << 20);
    await w2.abort();
    const never = site.createWriter(newId());
    await never.abort();
    for (const id of [small, large]) {
      t.equal(await site.open(id), undefined, 'open: undefined');
      t.equal(await site.stat(id), undefined, 'stat: undefined');
    }
    t.same(await listed(site), [], 'nothing listed');
    await t.rejects(w1.commit(), 'commit after abort is refused');
    t.equal(await site.stat(small), undefined, 'and stores nothing');
  });

  t.test('delete removes a blob and is idempotent', async (t) => {
    const site = await fresh(t);
    const id = newId();
    await put(site, id, randomBytes(1000));
    await site.delete(id);
    t.equal(await site.open(id), undefined, 'gone');
    t.equal(await site.stat(id), undefined, 'no stat');
    await t.resolves(site.delete(id), 'deleting again is fine');
    await t.resolves(site.delete(newId()), 'deleting a blob that never existed is fine');
  });

  t.test('list returns exactly the committed blobs', async (t) => {
    const site = await fresh(t);
    const committed = Array.from({ length: 7 }, newId);
    for (const id of committed) await put(site, id, randomBytes(100 + committed.indexOf(id)));
    const deleted = committed.pop()!;
    await site.delete(deleted);
    const pending = site.createWriter(newId());
    await pending.write(randomBytes(10));
    const aborted = site.createWriter(newId());
    await aborted.write(randomBytes(10));
    await aborted.abort();
    t.same(await listed(site), committed.sort(), 'committed, not deleted, nothing else');
    await pending.abort();
  });

  t.test('a blob larger than one part round-trips byte-identical', async (t) => {
    const site = await fresh(t);
    const id = newId();
    const data = randomBytes(opts.largeSize ?? 20 << 20);
    await put(site, id, data, 1 << 20);
    t.same(await site.stat(id), { size: data.length }, 'size');
    const back = await readBack(site, id, 3 << 20);
    t.equal(back && sha(back), sha(data), 'sha256 of what came back matches');
    const r = (await site.open(id))!;
    t.teardown(() => r.close());
    const mid = (8 << 20) - 100;
    t.ok((await r.read(mid, 200)).equals(data.subarray(mid, mid + 200)), 'a range across an 8 MiB boundary');
  });

  t.test('many concurrent writers', async (t) => {
    const site = await fresh(t);
    const blobs = Array.from({ length: 32 }, (_, i) => ({ id: newId(), data: randomBytes(1 + i * 37_000) }));
    // Writers interleave: each writes in small chunks while the others do.
    await Promise.all(blobs.map(({ id, data }) => put(site, id, data, 16 * 1024)));
    const back = await Promise.all(blobs.map(({ id }) => readBack(site, id)));
    t.ok(
      blobs.every(({ data }, i) => back[i]?.equals(data)),
      'every blob reads back as its own writer wrote it',
    );
    t.same(await listed(site), blobs.map((b) => b.id).sort(), 'all listed');
  });

  t.test('invalid blob ids are refused before any I/O', async (t) => {
    const site = await fresh(t);
    for (const bad of ['', '../../etc/passwd', 'ABCDEF0123456789ABCDEF0123456789', `${newId()}0`, `${newId().slice(0, 30)}/x`, 'x'.repeat(32), `${newId().slice(0, 31)}\0`]) {
      t.throws(() => site.createWriter(bad), TypeError, `createWriter(${JSON.stringify(bad)})`);
      await t.rejects(site.open(bad), TypeError, 'open');
      await t.rejects(site.stat(bad), TypeError, 'stat');
      await t.rejects(site.delete(bad), TypeError, 'delete');
    }
    t.same(await listed(site), [], 'nothing was created');
  });

  t.test('health is true for a working site', async (t) => {
    const site = await fresh(t);
    t.equal(await site.health(), true);
  });
}
