// The scrub's checks of one stored copy, against a real site directory on
// disk: a copy or shard that is whole, missing, short, longer than its
// record, or with a flipped byte in any of its large reads is judged so;
// and the pass's reads stay within the limit it sets, a limit that may
// change while checks wait.
import { randomBytes } from 'node:crypto';
import { appendFile, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import t from 'tap';
import { LocalDirSite, type Segment, type ShardLayout } from '../../../tiering/index.js';
import { CheckReads, checkCopy, checkShard } from '../../../tiering/flows/repair.js';
import { removeDir, tempDir } from '../../helpers/gateway.js';

const MiB = 1 << 20;
const noPace = async () => undefined;

function crcs(data: Buffer, unit: number): string {
  const out = Buffer.alloc(Math.ceil(data.length / unit) * 4);
  for (let i = 0; i * unit < data.length; i++) out.writeUInt32BE(crc32(data.subarray(i * unit, (i + 1) * unit)), i * 4);
  return out.toString('base64');
}

async function put(site: LocalDirSite, blob: string, data: Buffer): Promise<string> {
  const w = site.createWriter(blob);
  await w.write(data);
  await w.commit();
  return join(site.root, 'blobs', blob.slice(0, 2), blob);
}

function segmentOf(blob: string, data: Buffer, blockSize = MiB): Segment {
  return { blob, size: data.length, md5: '', sha256: '', blockSize, crc32: crcs(data, blockSize) };
}

async function flip(path: string, at: number): Promise<void> {
  const buf = await readFile(path);
  buf[at] = buf[at]! ^ 0xff;
  await writeFile(path, buf);
}

async function siteIn(t: { teardown(fn: () => Promise<void>): void }): Promise<LocalDirSite> {
  const dir = await tempDir('flows-repair-');
  t.teardown(() => removeDir(dir));
  return LocalDirSite.open('A', dir);
}

t.test('a full copy read in 4 MiB reads: whole, missing, flipped in a later read, short, longer, empty', async (t) => {
  const site = await siteIn(t);
  const reads = new CheckReads(() => 2);
  const data = randomBytes(9 * MiB + 123); // three reads, the last partial
  const blob = 'a'.repeat(32);
  const path = await put(site, blob, data);
  const seg = segmentOf(blob, data);

  t.same(await checkCopy(site, seg, reads, noPace), { state: 'ok' }, 'a whole copy is ok');
  t.equal((await checkCopy(site, { ...seg, blob: 'b'.repeat(32) }, reads, noPace)).state, 'missing', 'an absent blob is missing');

  await flip(path, 8 * MiB + 5);
  const flipped = await checkCopy(site, seg, reads, noPace);
  t.equal(flipped.state, 'corrupt', 'a byte flipped in the third read is found');
  t.match(flipped, { detail: /fails its checksum at offset 8388608/ }, 'at the block that holds it');
  await flip(path, 8 * MiB + 5);

  await appendFile(path, Buffer.from([0]));
  t.match(await checkCopy(site, seg, reads, noPace), { state: 'corrupt', detail: /is longer than 9437307 bytes/ }, 'one byte too many is found');
  await truncate(path, data.length - 1);
  t.match(await checkCopy(site, seg, reads, noPace), { state: 'corrupt', detail: /is short: 9437306 of 9437307 bytes/ }, 'one byte too few is found');

  // Exactly one read's worth: the byte past the end falls in the last read, not a read of its own.
  const four = randomBytes(4 * MiB);
  const fourPath = await put(site, 'c'.repeat(32), four);
  t.same(await checkCopy(site, segmentOf('c'.repeat(32), four), reads, noPace), { state: 'ok' }, 'a blob of exactly one read is ok');
  await appendFile(fourPath, Buffer.from([1]));
  t.equal((await checkCopy(site, segmentOf('c'.repeat(32), four), reads, noPace)).state, 'corrupt', 'and found longer with one byte more');

  const emptyPath = await put(site, 'd'.repeat(32), Buffer.alloc(0));
  const empty = segmentOf('d'.repeat(32), Buffer.alloc(0));
  t.same(await checkCopy(site, empty, reads, noPace), { state: 'ok' }, 'an empty copy is ok');
  await appendFile(emptyPath, Buffer.from([2]));
  t.equal((await checkCopy(site, empty, reads, noPace)).state, 'corrupt', 'an empty copy that gained a byte is not');
});

t.test('a shard checked stripe by stripe: whole, flipped, longer than its layout', async (t) => {
  const site = await siteIn(t);
  const reads = new CheckReads(() => 2);
  const pieceSize = 256 * 1024;
  const data = randomBytes(20 * pieceSize + 1000); // 21 stripes over two reads
  const blob = 'e'.repeat(32);
  const path = await put(site, blob, data);
  const layout: ShardLayout = { k: 2, m: 1, pieceSize, lastPieceSize: 1000, stripes: 21, shards: [{ site: 'A', blob, crc32: crcs(data, pieceSize) }] };

  t.same(await checkShard(site, layout, 0, reads, noPace), { state: 'ok' }, 'a whole shard is ok');
  await flip(path, 20 * pieceSize + 10);
  t.match(await checkShard(site, layout, 0, reads, noPace), { state: 'corrupt', detail: /fails its checksum at stripe 20/ }, 'a flip in the last stripe is found');
  await flip(path, 20 * pieceSize + 10);
  await appendFile(path, Buffer.from([0]));
  t.match(await checkShard(site, layout, 0, reads, noPace), { state: 'corrupt', detail: /is longer than/ }, 'a shard longer than its layout is found');
});

t.test('reads in flight stay within the limit, which may change while checks wait', async (t) => {
  const site = await siteIn(t);
  let limit = 1;
  const reads = new CheckReads(() => limit);
  const blobs = await Promise.all(
    Array.from({ length: 8 }, async (_, i) => {
      const data = randomBytes(6 * MiB);
      const blob = String(i).repeat(32);
      await put(site, blob, data);
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
