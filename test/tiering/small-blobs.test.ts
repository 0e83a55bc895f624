// A local site's small-blob store, on a real directory: blobs up to the limit
// go there and not to files; it keeps them across a reopen and after the
// option is turned off; a blob written again as a file (a repair after the
// limit was lowered) replaces the store's copy; a full disk fails a small
// write with ENOSPC, and the store takes writes again once there is room;
// it remembers its largest blob, so larger ones skip its lookup.
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { Level } from 'level';
import t from 'tap';
import { LocalDirSite } from '../../tiering/index.js';
import { SmallBlobStore } from '../../tiering/sites/small-blob-store.js';
import { listed, newId, put, readBack } from '../conformance/site-conformance.js';
import { removeDir, smallFilesystem, tempDir } from '../helpers/gateway.js';

const LIMIT = 64 * 1024;

/** Blob ids kept as files under blobs/. */
async function files(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const shard of await readdir(join(root, 'blobs'))) out.push(...(await readdir(join(root, 'blobs', shard))));
  return out.sort();
}

t.test('blobs up to the limit go to the store, larger ones to files; all read, stat and list alike', async (t) => {
  const dir = await tempDir();
  t.teardown(() => removeDir(dir));
  const site = await LocalDirSite.open('S', dir, { smallBlobBytes: LIMIT });
  t.teardown(() => site.close());
  const blobs = new Map([
    ['empty', Buffer.alloc(0)],
    ['small', randomBytes(4096)],
    ['at limit, in pieces', randomBytes(LIMIT)],
    ['one past', randomBytes(LIMIT + 1)],
    ['large', randomBytes(3 << 20)],
  ]);
  const ids = new Map<string, string>();
  for (const [name, data] of blobs) {
    const id = newId();
    ids.set(name, id);
    await put(site, id, data, name === 'at limit, in pieces' ? 10_000 : 1 << 20);
  }
  t.same(await files(dir), [ids.get('one past'), ids.get('large')].sort(), 'only the blobs past the limit are files');
  t.same(await listed(site), [...ids.values()].sort(), 'every blob is listed once');
  for (const [name, data] of blobs) {
    const id = ids.get(name)!;
    t.ok((await readBack(site, id))?.equals(data), `${name}: reads back byte-identical`);
    t.same(await site.stat(id), { size: data.length }, `${name}: stat gives its size`);
  }
  const r = (await site.open(ids.get('small')!))!;
  const into = Buffer.alloc(100);
  t.ok((await r.read(4000, 100, into)).equals(blobs.get('small')!.subarray(4000)), 'a ranged read into a buffer stops at the end');
  await r.close();

  await site.delete(ids.get('small')!);
  await site.delete(ids.get('one past')!);
  t.equal(await site.open(ids.get('small')!), undefined, 'a deleted small blob is gone');
  t.equal(await site.stat(ids.get('one past')!), undefined, 'a deleted file blob is gone');
  t.equal((await listed(site)).length, 3, 'the other three remain listed');
});

t.test('the store keeps its blobs across a reopen, and after the option is turned off', async (t) => {
  const dir = await tempDir();
  t.teardown(() => removeDir(dir));
  let site = await LocalDirSite.open('S', dir, { smallBlobBytes: LIMIT });
  const blobs = Array.from({ length: 50 }, () => ({ id: newId(), data: randomBytes(1 + Math.floor(Math.random() * LIMIT)) }));
  await Promise.all(blobs.map((b) => put(site, b.id, b.data)));
  await site.close();

  site = await LocalDirSite.open('S', dir);
  t.teardown(() => site.close());
  let same = 0;
  for (const b of blobs) if ((await readBack(site, b.id))?.equals(b.data)) same++;
  t.equal(same, blobs.length, 'every blob reads back after reopening without the option');
  const fresh = { id: newId(), data: randomBytes(1000) };
  await put(site, fresh.id, fresh.data);
  t.same(await files(dir), [fresh.id], 'new small blobs are files again');

  // A repair rewrites a store blob as a file now: the file's bytes win and the stored copy goes.
  const repaired = randomBytes(blobs[0]!.data.length);
  await put(site, blobs[0]!.id, repaired);
  t.ok((await readBack(site, blobs[0]!.id))?.equals(repaired), 'the rewritten blob reads its new bytes');
  t.equal((await listed(site)).filter((id) => id === blobs[0]!.id).length, 1, 'and is listed once');
});

t.test('concurrent small writes each read back what they wrote', async (t) => {
  const dir = await tempDir();
  t.teardown(() => removeDir(dir));
  const site = await LocalDirSite.open('S', dir, { smallBlobBytes: LIMIT });
  t.teardown(() => site.close());
  const content = (id: string) => createHash('sha256').update(id).digest().toString('hex').repeat(64);
  const ids = Array.from({ length: 500 }, () => newId());
  await Promise.all(ids.map((id) => put(site, id, Buffer.from(content(id)))));
  let same = 0;
  for (const id of ids) if ((await readBack(site, id))?.toString() === content(id)) same++;
  t.equal(same, ids.length, '500 concurrent writes, each read back byte-identical');
  t.same(await files(dir), [], 'none became a file');
});

t.test('a full filesystem fails a small write with ENOSPC, reported; freed space and the store writes again', async (t) => {
  const dir = await smallFilesystem(t);
  if (dir === undefined) return;
  const site = await LocalDirSite.open('S', join(dir, 'site'), { smallBlobBytes: LIMIT });
  t.teardown(() => site.close());
  const failures: string[] = [];
  site.onWriteFailure((err) => failures.push((err as NodeJS.ErrnoException).code ?? 'none'));
  const before = { id: newId(), data: randomBytes(1000) };
  await put(site, before.id, before.data);
  const filler = join(dir, 'filler');
  await writeFile(filler, Buffer.alloc(0));
  for (;;) {
    const more = await appendFile(filler, randomBytes(256 * 1024)).then(() => true, () => false);
    if (!more) break;
  }
  const err = await put(site, newId(), randomBytes(4096)).then(() => undefined, (e: NodeJS.ErrnoException) => e);
  t.equal(err?.code, 'ENOSPC', 'the write fails with ENOSPC');
  t.same(failures, ['ENOSPC'], 'and the site reports it as such');
  await rm(filler);
  const after = { id: newId(), data: randomBytes(4096) };
  await put(site, after.id, after.data);
  t.ok((await readBack(site, after.id))?.equals(after.data), 'with room again, a small write succeeds, no reopen needed');
  t.ok((await readBack(site, before.id))?.equals(before.data), 'what was there before is intact');
});

t.test('the store remembers the largest blob it took: sizes past it skip the lookup, across reopens', async (t) => {
  const dir = await tempDir();
  t.teardown(() => removeDir(dir));
  const path = join(dir, 'store');
  let store = await SmallBlobStore.open(path, 1 << 20);
  t.notOk(store.mayHold(1), 'an empty store holds nothing');
  await store.put(newId(), randomBytes(1000));
  await store.put(newId(), randomBytes(5000));
  await store.put(newId(), randomBytes(3000));
  t.ok(store.mayHold(5000) && !store.mayHold(5001), 'it may hold up to its largest blob, 5000 bytes');
  await store.close();
  store = await SmallBlobStore.open(path, 1 << 20);
  t.ok(store.mayHold(5000) && !store.mayHold(5001), 'and still knows so after a reopen');
  let ids = 0;
  for await (const _ of store.ids()) ids++;
  t.equal(ids, 3, 'the record of it is not listed as a blob');
  await store.close();
  // A store from before the record: it may hold anything up to the site's largest small blob.
  const raw = new Level<string, Buffer>(path, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
  await raw.del('~largest');
  await raw.close();
  store = await SmallBlobStore.open(path, 1 << 20);
  t.teardown(() => store.close());
  t.ok(store.mayHold(1 << 20) && !store.mayHold((1 << 20) + 1), 'without the record, every size up to the limit is looked up');
});

t.test('concurrent writes of many sizes, grouped into shared batches, leave the record at the largest after a reopen', async (t) => {
  const dir = await tempDir();
  t.teardown(() => removeDir(dir));
  const path = join(dir, 'store');
  let store = await SmallBlobStore.open(path, 1 << 20);
  const sizes = Array.from({ length: 200 }, (_, i) => 1 + ((i * 7919) % 60_000));
  await Promise.all(sizes.map((n) => store.put(newId(), randomBytes(n))));
  await store.close();
  store = await SmallBlobStore.open(path, 1 << 20);
  t.teardown(() => store.close());
  const largest = Math.max(...sizes);
  t.ok(store.mayHold(largest) && !store.mayHold(largest + 1), `the record is the largest blob written, ${largest} bytes`);
});

t.test('a blob stored under a raised limit is still found, checked and replaced once the limit is lowered again', async (t) => {
  const dir = await tempDir();
  t.teardown(() => removeDir(dir));
  let site = await LocalDirSite.open('S', dir, { smallBlobBytes: 16 * 1024 });
  await put(site, newId(), randomBytes(10_000));
  await site.close();
  site = await LocalDirSite.open('S', dir, { smallBlobBytes: 256 * 1024 });
  const big = { id: newId(), data: randomBytes(200 * 1024) };
  await put(site, big.id, big.data);
  t.same(await files(dir), [], 'under the raised limit a 200 KiB blob goes to the store');
  await site.close();

  site = await LocalDirSite.open('S', dir);
  t.teardown(() => site.close());
  const file = { id: newId(), data: randomBytes(300 * 1024) };
  await put(site, file.id, file.data);
  const expect = (data: Buffer) => ({ size: data.length, unit: 64 * 1024, crcs: unitCrcs(data, 64 * 1024) });
  t.equal(await site.checkBlob(big.id, expect(big.data)), undefined, 'the 200 KiB blob is found in the store (checked on the event loop, not as a file)');
  t.same(await site.checkBlob(file.id, expect(file.data)), { state: 'ok' }, 'a larger blob is checked as the file it is');
  const repaired = randomBytes(big.data.length);
  await put(site, big.id, repaired);
  t.ok((await readBack(site, big.id))?.equals(repaired), 'the blob written again as a file reads its new bytes: the store copy went');
  t.same(await files(dir), [big.id, file.id].sort(), 'both are files now');
});

/** Each `unit`-byte unit's CRC32, big-endian, as a site's checks want them. */
function unitCrcs(data: Buffer, unit: number): Buffer {
  const out = Buffer.alloc(Math.ceil(data.length / unit) * 4);
  for (let i = 0; i * unit < data.length; i++) out.writeUInt32BE(crc32(data.subarray(i * unit, (i + 1) * unit)), i * 4);
  return out;
}
