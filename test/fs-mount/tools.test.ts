// Everyday tools on the mounted drive, each run as a child process: what a
// user would type, checked the way a user would check it.
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { q, sh, shStatus, startMounted } from './helpers.js';

t.test('the mounted drive under real tools', async (t) => {
  const { mnt, root } = await startMounted(t);
  const src = join(root, 'src');
  const out = join(root, 'out');
  // A source tree with unicode, spaces and a few sizes (made outside the mount).
  const files: Record<string, Buffer> = {
    'plain.txt': Buffer.from('plain\n'),
    'with space/Ünïcödé – naïve.txt': Buffer.from('unicode name\n'),
    'with space/empty': Buffer.alloc(0),
    'deep/er/than/that/blob.bin': randomBytes(3 * 1024 * 1024 + 17),
    '日本語/ファイル.txt': Buffer.from('japanese\n'),
  };
  for (const [name, data] of Object.entries(files)) {
    await mkdir(join(src, name, '..'), { recursive: true });
    await writeFile(join(src, name), data);
  }
  await mkdir(join(src, 'empty dir'), { recursive: true });
  await mkdir(out, { recursive: true });

  await t.test('mkdir at the top makes a bucket; cp -r copies a tree byte for byte', async (t) => {
    await sh(`mkdir ${q(`${mnt}/specimens`)}`);
    await sh(`cp -r ${q(src)} ${q(`${mnt}/specimens/tree`)}`);
    const want = await sh(`cd ${q(src)} && find . -type f -exec sha256sum {} + | sort -k2`);
    const got = await sh(`cd ${q(`${mnt}/specimens/tree`)} && find . -type f -exec sha256sum {} + | sort -k2`);
    t.equal(got, want, 'every file has the same sha256 under the same name');
    const dirs = await sh(`cd ${q(`${mnt}/specimens/tree`)} && find . -type d | sort`);
    t.match(dirs, /\.\/empty dir\n/, 'an empty directory survives (marker)');
    const ls = await sh(`ls -la ${q(`${mnt}/specimens/tree/with space`)}`);
    t.match(ls, /Ünïcödé – naïve\.txt/);
    t.equal((await sh(`stat -c %s ${q(`${mnt}/specimens/tree/deep/er/than/that/blob.bin`)}`)).trim(), String(3 * 1024 * 1024 + 17));
    const du = Number((await sh(`du -sk ${q(`${mnt}/specimens/tree`)}`)).split('\t')[0]);
    t.ok(du >= 3072, `du counts the bytes (${du} KiB)`);
  });

  await t.test('rmdir of a non-empty directory is ENOTEMPTY; rm -r removes a tree', async (t) => {
    const r = await shStatus(`rmdir ${q(`${mnt}/specimens/tree/deep`)}`);
    t.not(r.code, 0);
    t.match(r.stderr, /not empty/i);
    const b = await shStatus(`rmdir ${q(`${mnt}/specimens`)}`);
    t.match(b.stderr, /not empty/i, 'a bucket with objects is not removed either');
    await sh(`mkdir -p ${q(`${mnt}/specimens/scratch/a/b/c`)} && touch ${q(`${mnt}/specimens/scratch/a/b/c/f`)}`);
    await sh(`rm -r ${q(`${mnt}/specimens/scratch`)}`);
    t.equal((await shStatus(`ls ${q(`${mnt}/specimens/scratch`)}`)).code, 2, 'gone');
    await sh(`mkdir ${q(`${mnt}/emptybucket`)} && rmdir ${q(`${mnt}/emptybucket`)}`);
    t.notMatch(await sh(`ls ${q(mnt)}`), /emptybucket/, 'an empty bucket is removed by rmdir');
    await sh(`mkdir -p ${q(`${mnt}/specimens/keep/inner`)} && echo x > ${q(`${mnt}/specimens/keep/inner/only`)} && rm ${q(`${mnt}/specimens/keep/inner/only`)}`);
    t.equal((await sh(`stat -c %F ${q(`${mnt}/specimens/keep/inner`)}`)).trim(), 'directory', 'removing the last file keeps its directory');
  });

  await t.test('mv renames files and whole directories; over an existing file it replaces it', async (t) => {
    const d = `${mnt}/specimens/tree`;
    await sh(`mv ${q(`${d}/plain.txt`)} ${q(`${d}/renamed.txt`)}`);
    t.equal(await sh(`cat ${q(`${d}/renamed.txt`)}`), 'plain\n');
    t.equal((await shStatus(`cat ${q(`${d}/plain.txt`)}`)).code, 1);
    await sh(`echo replaced-by > ${q(`${d}/other.txt`)} && mv ${q(`${d}/other.txt`)} ${q(`${d}/renamed.txt`)}`);
    t.equal(await sh(`cat ${q(`${d}/renamed.txt`)}`), 'replaced-by\n', 'rename over an existing file replaced it');
    const before = await sh(`cd ${q(`${d}/deep`)} && find . -type f -exec sha256sum {} + | sort`);
    await sh(`mv ${q(`${d}/deep`)} ${q(`${d}/moved deep`)}`);
    t.equal(await sh(`cd ${q(`${d}/moved deep`)} && find . -type f -exec sha256sum {} + | sort`), before, 'a moved directory keeps every file');
    t.equal((await shStatus(`ls ${q(`${d}/deep`)}`)).code, 2);
    await sh(`mkdir ${q(`${d}/target-empty`)} && mv ${q(`${d}/empty dir`)} ${q(`${d}/target-empty`)}/`);
    t.equal((await sh(`stat -c %F ${q(`${d}/target-empty/empty dir`)}`)).trim(), 'directory', 'an empty directory moves into another');
  });

  await t.test('dd with seek and conv=notrunc, sparse writes, echo >> appends, truncate', async (t) => {
    const f = `${mnt}/specimens/rw.bin`;
    await sh(`printf 'AAAAAAAAAA' > ${q(f)}`);
    await sh(`printf 'BB' | dd of=${q(f)} bs=1 seek=4 conv=notrunc status=none`);
    t.equal(await sh(`cat ${q(f)}`), 'AAAABBAAAA', 'overwrote in the middle, kept the rest');
    await sh(`printf 'Z' | dd of=${q(f)} bs=1 seek=20 conv=notrunc status=none`);
    t.equal(await sh(`od -An -c ${q(f)} | tr -s ' ' | tr -d '\\n'`), ' A A A A B B A A A A \\0 \\0 \\0 \\0 \\0 \\0 \\0 \\0 \\0 \\0 Z', 'a write past the end leaves zeros');
    await sh(`echo one > ${q(`${f}.log`)} && echo two >> ${q(`${f}.log`)} && sh -c 'echo three >> ${q(`${f}.log`)}'`);
    t.equal(await sh(`cat ${q(`${f}.log`)}`), 'one\ntwo\nthree\n');
    await sh(`truncate -s 4 ${q(f)}`);
    t.equal(await sh(`cat ${q(f)}`), 'AAAA');
    await sh(`truncate -s 1M ${q(f)}`);
    t.equal((await sh(`stat -c %s ${q(f)}`)).trim(), String(1 << 20));
    await sh(`dd if=/dev/zero of=${q(f)} bs=64k count=3 status=none`);
    t.equal((await sh(`stat -c %s ${q(f)}`)).trim(), String(3 * 65536), 'O_TRUNC then write');
  });

  await t.test('chmod, touch -d and stat keep POSIX attributes', async (t) => {
    const f = `${mnt}/specimens/attrs.txt`;
    await sh(`echo x > ${q(f)} && chmod 640 ${q(f)} && touch -d '2001-02-03 04:05:06Z' ${q(f)}`);
    t.equal((await sh(`stat -c '%a %Y' ${q(f)}`)).trim(), `640 ${Date.UTC(2001, 1, 3, 4, 5, 6) / 1000}`);
    await sh(`mkdir ${q(`${mnt}/specimens/d700`)} && chmod 700 ${q(`${mnt}/specimens/d700`)}`);
    t.equal((await sh(`stat -c '%a %F' ${q(`${mnt}/specimens/d700`)}`)).trim(), '700 directory');
  });

  await t.test('cp -p keeps mode and mtime set just before close; a seek mid-copy still commits whole', async (t) => {
    const local = join(root, 'p.bin');
    await writeFile(local, randomBytes(2 * 1024 * 1024 + 5));
    await sh(`chmod 600 ${q(local)} && touch -d '1999-12-31 23:59:58Z' ${q(local)}`);
    await sh(`cp -p ${q(local)} ${q(`${mnt}/specimens/p.bin`)}`);
    t.equal((await sh(`stat -c '%a %Y %s' ${q(`${mnt}/specimens/p.bin`)}`)).trim(), (await sh(`stat -c '%a %Y %s' ${q(local)}`)).trim());
    t.equal((await sh(`sha256sum < ${q(`${mnt}/specimens/p.bin`)}`)), await sh(`sha256sum < ${q(local)}`));
    // Written from the start, then out of order: the stream is abandoned and the temp file commits.
    const dst = q(`${mnt}/specimens/q.bin`);
    await sh(
      `exec 3>${dst}; head -c 1048576 ${q(local)} >&3; ` +
        `dd if=${q(local)} of=/dev/fd/3 bs=1M skip=2 seek=2 conv=notrunc status=none; ` +
        `dd if=${q(local)} of=/dev/fd/3 bs=1M skip=1 seek=1 count=1 conv=notrunc status=none; exec 3>&-`,
    );
    t.equal((await sh(`sha256sum < ${q(`${mnt}/specimens/q.bin`)}`)), await sh(`sha256sum < ${q(local)}`));
  });

  await t.test('ln -s makes a symbolic link that readlink and cat follow; a hard link is refused', async (t) => {
    await sh(`ln -s tree/renamed.txt ${q(`${mnt}/specimens/link`)}`);
    t.equal((await sh(`readlink ${q(`${mnt}/specimens/link`)}`)).trim(), 'tree/renamed.txt');
    t.equal(await sh(`cat ${q(`${mnt}/specimens/link`)}`), 'replaced-by\n');
    t.equal((await sh(`stat -c %F ${q(`${mnt}/specimens/link`)}`)).trim(), 'symbolic link');
    const hard = await shStatus(`ln ${q(`${mnt}/specimens/tree/renamed.txt`)} ${q(`${mnt}/specimens/hard`)}`);
    t.match(hard.stderr, /Operation not permitted/, 'ln without -s: EPERM, as link(2) says for a filesystem without hard links');
    t.equal((await shStatus(`stat ${q(`${mnt}/specimens/hard`)}`)).code, 1, 'and nothing is made');
  });

  await t.test('setfattr/getfattr: user attributes, and the tier and sites', async (t) => {
    const f = `${mnt}/specimens/tree/renamed.txt`;
    await sh(`setfattr -n user.collector -v 'A. Wallace' ${q(f)}`);
    t.match(await sh(`getfattr -n user.collector --only-values ${q(f)}`), /^A\. Wallace$/);
    t.equal((await sh(`getfattr -n user.valentine.tier --only-values ${q(f)}`)).trim(), 'replicated');
    t.match((await sh(`getfattr -n user.valentine.sites --only-values ${q(f)}`)).trim(), /^hot,A,B$/);
    t.match(await sh(`getfattr -d ${q(f)}`), /user\.collector="A\. Wallace"/);
    const ro = await shStatus(`setfattr -n user.valentine.tier -v stub ${q(f)}`);
    t.not(ro.code, 0, 'computed attributes cannot be set');
    await sh(`setfattr -x user.collector ${q(f)}`);
    t.not((await shStatus(`getfattr -n user.collector ${q(f)}`)).code, 0, 'removed');
  });

  await t.test('chown, two handles on one file, statfs, bucket names, moves across buckets', async (t) => {
    const f = `${mnt}/specimens/owned.txt`;
    await sh(`echo owned > ${q(f)} && chown 1234:5678 ${q(f)}`);
    t.equal((await sh(`stat -c '%u %g' ${q(f)}`)).trim(), '1234 5678');
    // One process holds a write handle and a read handle: the reader sees the uncommitted write.
    const both = await sh(`exec 3>>${q(f)} 4<${q(f)}; echo appended >&3; cat <&4`);
    t.equal(both, 'owned\nappended\n', 'a second handle sees the first one\'s writes');
    const [mBlocks, mSize] = (await sh(`stat -f -c '%b %S' ${q(mnt)}`)).trim().split(' ').map(Number);
    // Capacity as df counts it: used plus available (root's reserved blocks are neither).
    const [dBlocks, dFree, dAvail, dSize] = (await sh(`stat -f -c '%b %f %a %S' ${q(root)}`)).trim().split(' ').map(Number);
    t.equal(mBlocks! * mSize!, (dBlocks! - dFree! + dAvail!) * dSize!, 'statfs reports the capacity of the disk under the sites');
    const bad = await shStatus(`mkdir ${q(`${mnt}/Not_A_Bucket`)}`);
    t.match(bad.stderr, /Invalid argument/, 'a name S3 refuses for a bucket is EINVAL');
    await sh(`mkdir ${q(`${mnt}/other-bucket`)} && mv ${q(f)} ${q(`${mnt}/other-bucket/owned.txt`)}`);
    t.equal(await sh(`cat ${q(`${mnt}/other-bucket/owned.txt`)}`), 'owned\nappended\n', 'mv across buckets copies (EXDEV)');
    t.equal((await shStatus(`cat ${q(f)}`)).code, 1, 'and removes the source');
  });

  await t.test('rsync -a in and out, tar c and tar x', async (t) => {
    await sh(`rsync -a ${q(`${src}/`)} ${q(`${mnt}/specimens/rsynced/`)}`);
    await sh(`rsync -a ${q(`${mnt}/specimens/rsynced/`)} ${q(`${out}/rsync-back/`)}`);
    const sums = async (d: string) => sh(`cd ${q(d)} && find . -type f -exec sha256sum {} + | sort -k2`);
    t.equal(await sums(`${out}/rsync-back`), await sums(src), 'round trip through the mount is byte-identical');
    const mtimes = async (d: string) => sh(`cd ${q(d)} && find . -type f -printf '%P %T@\\n' | sed 's/\\.[0-9]*$//' | sort`);
    t.equal(await mtimes(`${mnt}/specimens/rsynced`), await mtimes(src), 'rsync -a kept modification times');
    const again = await sh(`rsync -a --itemize-changes ${q(`${src}/`)} ${q(`${mnt}/specimens/rsynced/`)}`);
    t.equal(again.trim(), '', 'a second rsync finds nothing to copy');
    await sh(`tar cf ${q(`${out}/t.tar`)} -C ${q(src)} .`);
    await sh(`mkdir ${q(`${mnt}/specimens/untarred`)} && tar xf ${q(`${out}/t.tar`)} -C ${q(`${mnt}/specimens/untarred`)}`);
    t.equal(await sums(`${mnt}/specimens/untarred`), await sums(src), 'tar x into the mount');
    await sh(`tar cf ${q(`${out}/back.tar`)} -C ${q(`${mnt}/specimens/untarred`)} . && mkdir ${q(`${out}/untar-back`)} && tar xf ${q(`${out}/back.tar`)} -C ${q(`${out}/untar-back`)}`);
    t.equal(await sums(`${out}/untar-back`), await sums(src), 'tar c from the mount');
  });
});
