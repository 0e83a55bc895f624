// The scrub's checks of one stored copy: a copy or shard that is whole,
// missing, short, longer than its record, or with a flipped byte in any of
// its large reads is judged so, whether the site checks it off the event
// loop (a real site directory on disk: its worker thread) or it is read on
// the event loop (a site in memory; a blob in a small-blob store); and the
// event loop's reads stay within the limit the pass sets, a limit that may
// change while checks wait.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import t from 'tap';
import { DEFAULT_CHECK_NICE, LocalDirSite, MemorySite, type Segment, type ShardLayout, type Site } from '../../../tiering/index.js';
import { CheckReads, checkCopy, checkShard } from '../../../tiering/flows/repair.js';
import { removeDir, smallFilesystem, tempDir } from '../../helpers/gateway.js';

const MiB = 1 << 20;
const noPace = async () => undefined;

function crcs(data: Buffer, unit: number): string {
  const out = Buffer.alloc(Math.ceil(data.length / unit) * 4);
  for (let i = 0; i * unit < data.length; i++) out.writeUInt32BE(crc32(data.subarray(i * unit, (i + 1) * unit)), i * 4);
  return out.toString('base64');
}

function segmentOf(blob: string, data: Buffer, blockSize = MiB): Segment {
  return { blob, size: data.length, md5: '', sha256: '', blockSize, crc32: crcs(data, blockSize) };
}

/** A site, and how the test damages a blob on it. */
interface Backend {
  site: Site;
  put(blob: string, data: Buffer): Promise<void>;
  change(blob: string, to: (bytes: Buffer) => Buffer): Promise<void>;
}

async function put(site: Site, blob: string, data: Buffer): Promise<void> {
  const w = site.createWriter(blob);
  await w.write(data);
  await w.commit();
}

/** A site directory on disk: its files are checked by the worker thread. */
async function onDisk(t: { teardown(fn: () => Promise<void>): void }): Promise<Backend> {
  const dir = await tempDir('flows-repair-');
  t.teardown(() => removeDir(dir));
  const site = await LocalDirSite.open('A', dir);
  const path = (blob: string) => join(site.root, 'blobs', blob.slice(0, 2), blob);
  return { site, put: (blob, data) => put(site, blob, data), change: async (blob, to) => writeFile(path(blob), to(await readFile(path(blob)))) };
}

/** A site in memory: its blobs are read on the event loop. */
function inMemory(): Backend {
  const site = new MemorySite('A');
  return { site, put: (blob, data) => put(site, blob, data), change: async (blob, to) => void site.blobs.set(blob, to(site.blobs.get(blob)!)) };
}

const flipped = (at: number) => (b: Buffer) => {
  const c = Buffer.from(b);
  c[at] = c[at]! ^ 0xff;
  return c;
};
const plus = (byte: number) => (b: Buffer) => Buffer.concat([b, Buffer.from([byte])]);
const cut = (len: number) => (b: Buffer) => b.subarray(0, len);

for (const [where, backend] of [
  ['checked off the event loop (site directory)', onDisk],
  ['read on the event loop (site in memory)', inMemory],
] as const) {
  t.test(`${where}: a full copy in 4 MiB reads: whole, missing, flipped in a later read, short, longer, empty`, async (t) => {
    const { site, put, change } = await backend(t);
    const reads = new CheckReads(() => 2);
    const data = randomBytes(9 * MiB + 123); // three reads, the last partial
    const blob = 'a'.repeat(32);
    await put(blob, data);
    const seg = segmentOf(blob, data);

    t.same(await checkCopy(site, seg, reads, noPace), { state: 'ok' }, 'a whole copy is ok');
    t.equal((await checkCopy(site, { ...seg, blob: 'b'.repeat(32) }, reads, noPace)).state, 'missing', 'an absent blob is missing');

    let paced = 0;
    const counting = async (n: number) => void (paced += n);
    await checkCopy(site, { ...seg, blob: 'b'.repeat(32) }, reads, counting);
    t.equal(paced, 0, 'a missing blob counts no bytes read');
    await change(blob, flipped(8 * MiB + 5));
    await checkCopy(site, seg, reads, counting);
    t.equal(paced, 9 * MiB, 'a flip in block 8 counts the nine blocks read up to it');
    const found = await checkCopy(site, seg, reads, noPace);
    t.equal(found.state, 'corrupt', 'a byte flipped in the third read is found');
    t.match(found, { detail: /fails its checksum at offset 8388608/ }, 'at the block that holds it');
    await change(blob, flipped(8 * MiB + 5));

    await change(blob, plus(0));
    t.match(await checkCopy(site, seg, reads, noPace), { state: 'corrupt', detail: /is longer than 9437307 bytes/ }, 'one byte too many is found');
    await change(blob, cut(data.length - 1));
    t.match(await checkCopy(site, seg, reads, noPace), { state: 'corrupt', detail: /is short: 9437306 of 9437307 bytes/ }, 'one byte too few is found');

    // Exactly one read's worth: the byte past the end falls in the last read, not a read of its own.
    const four = randomBytes(4 * MiB);
    await put('c'.repeat(32), four);
    t.same(await checkCopy(site, segmentOf('c'.repeat(32), four), reads, noPace), { state: 'ok' }, 'a blob of exactly one read is ok');
    await change('c'.repeat(32), plus(1));
    t.equal((await checkCopy(site, segmentOf('c'.repeat(32), four), reads, noPace)).state, 'corrupt', 'and found longer with one byte more');

    await put('d'.repeat(32), Buffer.alloc(0));
    const empty = segmentOf('d'.repeat(32), Buffer.alloc(0));
    t.same(await checkCopy(site, empty, reads, noPace), { state: 'ok' }, 'an empty copy is ok');
    await change('d'.repeat(32), plus(2));
    t.equal((await checkCopy(site, empty, reads, noPace)).state, 'corrupt', 'an empty copy that gained a byte is not');
  });

  t.test(`${where}: a shard checked stripe by stripe: whole, flipped, short, longer than its layout`, async (t) => {
    const { site, put, change } = await backend(t);
    const reads = new CheckReads(() => 2);
    const pieceSize = 256 * 1024;
    const data = randomBytes(20 * pieceSize + 1000); // 21 stripes over two reads
    const blob = 'e'.repeat(32);
    await put(blob, data);
    const layout: ShardLayout = { k: 2, m: 1, pieceSize, lastPieceSize: 1000, stripes: 21, shards: [{ site: 'A', blob, crc32: crcs(data, pieceSize) }] };

    t.same(await checkShard(site, layout, 0, reads, noPace), { state: 'ok' }, 'a whole shard is ok');
    await change(blob, flipped(20 * pieceSize + 10));
    t.match(await checkShard(site, layout, 0, reads, noPace), { state: 'corrupt', detail: /fails its checksum at stripe 20/ }, 'a flip in the last stripe is found');
    await change(blob, flipped(20 * pieceSize + 10));
    await change(blob, cut(15 * pieceSize + 7));
    t.match(await checkShard(site, layout, 0, reads, noPace), { state: 'corrupt', detail: /fails its checksum at stripe 15/ }, 'a shard cut short in stripe 15 is found there');
    await change(blob, () => data);
    await change(blob, plus(0));
    t.match(await checkShard(site, layout, 0, reads, noPace), { state: 'corrupt', detail: /is longer than/ }, 'a shard longer than its layout is found');
  });
}

t.test('reads in flight stay within the limit, which may change while checks wait', async (t) => {
  const { site, put } = inMemory();
  let limit = 1;
  const reads = new CheckReads(() => limit);
  const blobs = await Promise.all(
    Array.from({ length: 8 }, async (_, i) => {
      const data = randomBytes(6 * MiB);
      const blob = String(i).repeat(32);
      await put(blob, data);
      return segmentOf(blob, data);
    }),
  );
  let most = 0;
  const watch = async () => {
    most = Math.max(most, reads.active);
  };
  const first = await Promise.all(blobs.map((seg) => checkCopy(site, seg, reads, watch)));
  t.ok(first.every((f) => f.state === 'ok'), 'eight copies checked side by side');
  t.equal(most, 1, 'never more than one read in flight under a limit of one');

  most = 0;
  const second = Promise.all(blobs.map((seg) => checkCopy(site, seg, reads, watch)));
  limit = 3; // raised while checks wait: they take the room
  t.ok((await second).every((f) => f.state === 'ok'), 'all checked after the limit rose');
  t.ok(most <= 3, `at most three in flight (saw ${most})`);
  t.equal(reads.active, 0, 'no read left in flight');
});

t.test('a blob held by a small-blob store is checked on the event loop; a file beside it by the worker, at a lower priority', async (t) => {
  const dir = await tempDir('flows-repair-small-');
  t.teardown(() => removeDir(dir));
  const site = await LocalDirSite.open('A', dir, { smallBlobBytes: 16 * 1024 });
  t.teardown(() => site.close());
  const reads = new CheckReads(() => 2);
  const small = randomBytes(4096);
  const large = randomBytes(2 * MiB + 1);
  await put(site, 'f'.repeat(32), small);
  await put(site, '0'.repeat(31) + '1', large);
  t.same(await checkCopy(site, segmentOf('f'.repeat(32), small, 1024), reads, noPace), { state: 'ok' }, 'the stored small blob is ok');
  const wrong = segmentOf('f'.repeat(32), flipped(3000)(small), 1024);
  t.match(await checkCopy(site, wrong, reads, noPace), { state: 'corrupt', detail: /at offset 2048/ }, 'and judged against its record');
  t.same(await checkCopy(site, segmentOf('0'.repeat(31) + '1', large), reads, noPace), { state: 'ok' }, 'the file is ok');

  // The worker lowered its own thread's priority: an operator sees it in top -H as a thread at the default nice value.
  const nices = await Promise.all(
    (await readdir('/proc/self/task')).map(async (tid) => Number((await readFile(`/proc/self/task/${tid}/stat`, 'utf8')).split(') ')[1]!.split(' ')[16])),
  );
  t.ok(nices.includes(DEFAULT_CHECK_NICE), `a thread of this process runs at nice ${DEFAULT_CHECK_NICE} (nice values: ${[...new Set(nices)].join(', ')})`);
});

/** Bytes of the file the page cache holds (util-linux fincore); undefined where the tool is missing. */
async function cached(path: string): Promise<number | undefined> {
  try {
    const { stdout } = await promisify(execFile)('fincore', ['--bytes', '--noheadings', '--raw', '--output', 'RES', path]);
    return Number(stdout.trim());
  } catch {
    return undefined;
  }
}

t.test('a blob of 1 MiB or more is read past the page cache, so the disk is what is checked; a filesystem without direct reads (tmpfs) is read through it', async (t) => {
  const { site, put: putOnDisk } = await onDisk(t);
  const reads = new CheckReads(() => 2);
  for (const [blob, size] of [['7'.repeat(32), 9 * MiB], ['6'.repeat(32), MiB]] as const) {
    const data = randomBytes(size);
    await putOnDisk(blob, data);
    const path = join((site as LocalDirSite).root, 'blobs', blob.slice(0, 2), blob);
    // Drop the file's pages (GNU dd: count=0 with nocache drops the whole file's cache).
    await promisify(execFile)('dd', [`if=${path}`, 'iflag=nocache', 'count=0', 'status=none']);
    const before = await cached(path);
    if (before === undefined) t.comment('fincore is not installed: the page cache is not looked at');
    t.same(await checkCopy(site, segmentOf(blob, data), reads, noPace), { state: 'ok' }, `${size} bytes: the copy is ok`);
    if (before !== undefined) {
      t.equal(before, 0, `${size} bytes: none of the file was cached before the check`);
      t.equal(await cached(path), 0, `${size} bytes: and none of it is after: the check read the disk`);
      await readFile(path);
      t.ok((await cached(path))! > 0, `${size} bytes: while a plain read of the file does fill the cache`);
    }
  }

  const dir = await smallFilesystem(t);
  if (!dir) return;
  const onTmpfs = await LocalDirSite.open('T', dir);
  const five = randomBytes(5 * MiB);
  await put(onTmpfs, '8'.repeat(32), five);
  t.same(await checkCopy(onTmpfs, segmentOf('8'.repeat(32), five), reads, noPace), { state: 'ok' }, 'on tmpfs the copy is ok');
  t.match(await checkCopy(onTmpfs, segmentOf('8'.repeat(32), flipped(4 * MiB + 3)(five)), reads, noPace), { state: 'corrupt', detail: /at offset 4194304/ }, 'and checked against its record');
});
