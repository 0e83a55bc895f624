// What one door writes the other reads at once: files written on the mount
// are objects over S3 (bytes, user metadata, mtime), and objects put over S3
// are files on the mount.
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import t from 'tap';
import { s3Client } from '../helpers/gateway.js';
import { forceTier, waitForTier } from '../helpers/tiers.js';
import { q, sh, shStatus, startMounted } from './helpers.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

t.test('mount and S3 see the same objects, bytes, metadata and times', async (t) => {
  const { gw, mnt, root } = await startMounted(t);
  const s3 = s3Client(gw);
  t.teardown(() => s3.destroy());

  await t.test('written on the mount, read over S3', async (t) => {
    await sh(`mkdir ${q(`${mnt}/crossdoor`)}`);
    const data = randomBytes(5 * 1024 * 1024 + 3);
    await writeFile(join(root, 'local.bin'), data);
    await sh(`mkdir -p ${q(`${mnt}/crossdoor/dir`)} && cp ${q(join(root, 'local.bin'))} ${q(`${mnt}/crossdoor/dir/file.bin`)}`);
    await sh(`setfattr -n user.specimen -v NHMUK-1234 ${q(`${mnt}/crossdoor/dir/file.bin`)}`);
    // No wait: the close above returned only once the object was committed.
    const got = await s3.send(new GetObjectCommand({ Bucket: 'crossdoor', Key: 'dir/file.bin' }));
    const body = Buffer.from(await got.Body!.transformToByteArray());
    t.equal(sha(body), sha(data), 'byte-identical');
    t.equal(got.ContentLength, data.length);
    t.match(got.ETag, /^"[0-9a-f]{32}"$/, 'has an ETag');
    t.same(got.Metadata, { specimen: 'NHMUK-1234' }, 'xattr is S3 user metadata');
    const mtime = Number((await sh(`stat -c %Y ${q(`${mnt}/crossdoor/dir/file.bin`)}`)).trim());
    t.equal(mtime, Math.floor(got.LastModified!.getTime() / 1000), 'stat mtime = S3 LastModified');
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: 'crossdoor', Prefix: 'dir/' }));
    t.same(listed.Contents?.map((c) => c.Key), ['dir/', 'dir/file.bin'], 'mkdir left an S3-style dir/ marker');
  });

  await t.test('written over S3, read on the mount', async (t) => {
    await s3.send(new CreateBucketCommand({ Bucket: 'from-s3' }));
    const data = randomBytes(2 * 1024 * 1024 + 11);
    await s3.send(new PutObjectCommand({ Bucket: 'from-s3', Key: 'a b/ü.bin', Body: data, Metadata: { collector: 'darwin' } }));
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'from-s3', Key: 'a b/ü.bin' }));
    t.equal((await sh(`sha256sum < ${q(`${mnt}/from-s3/a b/ü.bin`)}`)).split(' ')[0], sha(data), 'byte-identical through cat');
    t.equal((await sh(`stat -c '%s %Y %a %F' ${q(`${mnt}/from-s3/a b/ü.bin`)}`)).trim(), `${data.length} ${Math.floor(head.LastModified!.getTime() / 1000)} 644 regular file`);
    t.equal((await sh(`getfattr -n user.collector --only-values ${q(`${mnt}/from-s3/a b/ü.bin`)}`)), 'darwin', 'S3 user metadata is a user xattr');
    t.equal((await sh(`getfattr -n user.valentine.tier --only-values ${q(`${mnt}/from-s3/a b/ü.bin`)}`)), 'replicated');
    t.equal((await sh(`ls ${q(`${mnt}/from-s3`)}`)).trim(), 'a b', 'the key prefix is a directory');
    // An overwrite over S3 is what the next open on the mount reads.
    await s3.send(new PutObjectCommand({ Bucket: 'from-s3', Key: 'a b/ü.bin', Body: 'v2' }));
    t.equal(await sh(`cat ${q(`${mnt}/from-s3/a b/ü.bin`)}`), 'v2');
  });

  await t.test('a stub shows its real size and tier, reads byte-identical through cat, and is coded again after', async (t) => {
    await s3.send(new CreateBucketCommand({ Bucket: 'stubs' }));
    const data = randomBytes(6 * 1024 * 1024 + 5);
    await s3.send(new PutObjectCommand({ Bucket: 'stubs', Key: 'scan.tif', Body: data }));
    const forced = await forceTier(gw, 'stub', 'stubs', 'scan.tif');
    t.equal(forced.body.changed, 1, 'stubbed through the admin route');
    const file = q(`${mnt}/stubs/scan.tif`);
    t.equal((await sh(`getfattr -n user.valentine.tier --only-values ${file}`)), 'stub', 'the tier is an xattr');
    t.equal((await sh(`stat -c %s ${file}`)).trim(), String(data.length), 'stat shows the real size');
    t.equal(await sh(`getfattr -n user.valentine.sites --only-values ${file}`), 'A:0,B:1,C:2', 'placement: one piece on each site, no full copy');
    t.equal((await sh(`sha256sum < ${file}`)).split(' ')[0], sha(data), 'cat of the stub is byte-identical');
    await waitForTier(gw, 'stubs', ['scan.tif'], 'coded');
    t.pass('reading it on the mount recalled it: coded again');
  });

  await t.test('a directory renamed on the mount is listed under its new name over S3', async (t) => {
    await sh(`mv ${q(`${mnt}/crossdoor/dir`)} ${q(`${mnt}/crossdoor/renamed`)}`);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: 'crossdoor' }));
    t.same(listed.Contents?.map((c) => c.Key), ['renamed/', 'renamed/file.bin']);
    const got = await s3.send(new HeadObjectCommand({ Bucket: 'crossdoor', Key: 'renamed/file.bin' }));
    t.same(got.Metadata, { specimen: 'NHMUK-1234' }, 'metadata moved with it');
  });

  await t.test('an object no copy of which can be read answers EIO promptly, logged and counted', async (t) => {
    await s3.send(new PutObjectCommand({ Bucket: 'from-s3', Key: 'lost.bin', Body: randomBytes(300_000) }));
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'from-s3', Key: 'lost.bin' }));
    t.ok(head.ContentLength);
    // Destroy every copy behind the gateway's back.
    const blobs = await sh(`find ${q(gw.dataDir)} -path '*/blobs/*' -type f -newer ${q(`${root}/local.bin`)} -size +250k -size -400k`);
    const lost = blobs.trim().split('\n').filter((p) => p !== '');
    t.equal(lost.length, 3, 'hot, A and B each held a copy');
    await sh(`truncate -s 0 ${lost.map(q).join(' ')}`);
    const t0 = Date.now();
    const r = await shStatus(`cat ${q(`${mnt}/from-s3/lost.bin`)} > /dev/null`);
    t.not(r.code, 0);
    t.match(r.stderr, /Input\/output error/);
    t.ok(Date.now() - t0 < 10_000, 'promptly');
    t.ok(gw.logs.some((l) => l.includes('read through the mount failed') && l.includes('lost.bin')), 'the reason is logged');
  });

  await t.test('the drive counts its operations, latency, bytes, handles and recalls', async (t) => {
    const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
    t.ok(value(/^valentine_fuse_ops_total\{op="write",result="ok"\} (\d+)/m) > 0, 'write operations counted');
    t.ok(value(/^valentine_fuse_ops_total\{op="getattr",result="ENOENT"\} (\d+)/m) > 0, 'failures counted by errno');
    t.ok(value(/^valentine_fuse_written_bytes_total (\d+)/m) >= 5 * 1024 * 1024, 'bytes written');
    t.ok(value(/^valentine_fuse_read_bytes_total (\d+)/m) >= 2 * 1024 * 1024, 'bytes read');
    t.ok(value(/^valentine_fuse_op_seconds_count\{op="read"\} (\d+)/m) > 0, 'read latency histogram');
    t.ok(value(/^valentine_fuse_commits_total\{result="ok"\} (\d+)/m) > 0, 'commits on close');
    t.equal(value(/^valentine_fuse_open_handles (\d+)/m), 0, 'no handle left open');
    t.equal(value(/^valentine_fuse_recalls_total (\d+)/m), 1, 'the one stub read on the mount is counted as a recall');
    t.ok(value(/^valentine_fuse_read_failures_total (\d+)/m) >= 1, 'the unreadable object counted as a read failure');
  });
});
