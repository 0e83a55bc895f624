// rclone (the Debian package) against a real gateway: copy, sync, check and
// lsf of a tree of nested files with spaces and unicode in their names,
// including a file large enough for rclone's multipart upload.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { ACCESS_KEY, SECRET_KEY, removeDir, startGateway, tempDir } from '../helpers/gateway.js';

const exec = promisify(execFile);

const FILES: Record<string, number> = {
  'readme.txt': 120,
  'drawer 1/Carabus violaceus.tif': 300_000,
  'drawer 1/labels/étiquette n°1.jpg': 4096,
  'drawer 2/日本語/標本.png': 777,
  'drawer 2/empty.dat': 0,
  'drawer 2/deep/er/still/file with  two spaces.txt': 33,
  'big/scan.raw': 12 * 1024 * 1024 + 3,
};

t.test('rclone copy, check, lsf, sync', async (t) => {
  const gw = await startGateway();
  const work = await tempDir('valentine-rclone-');
  t.teardown(async () => {
    await gw.stop();
    await removeDir(gw.dataDir);
    await removeDir(work);
  });
  // rclone's AWS SDK fails on an AWS_CA_BUNDLE it cannot apply to plain HTTP.
  const { AWS_CA_BUNDLE: _ignored, ...inherited } = process.env;
  const env = {
    ...inherited,
    RCLONE_CONFIG: '/dev/null',
    RCLONE_CONFIG_VAL_TYPE: 's3',
    RCLONE_CONFIG_VAL_PROVIDER: 'Other',
    RCLONE_CONFIG_VAL_ENDPOINT: gw.s3Url,
    RCLONE_CONFIG_VAL_ACCESS_KEY_ID: ACCESS_KEY,
    RCLONE_CONFIG_VAL_SECRET_ACCESS_KEY: SECRET_KEY,
    RCLONE_CONFIG_VAL_FORCE_PATH_STYLE: 'true',
  };
  const rclone = (...args: string[]) =>
    exec('rclone', ['--s3-upload-cutoff', '5M', '--s3-chunk-size', '5M', '--low-level-retries', '1', '--retries', '1', ...args], { env, maxBuffer: 16 << 20 });

  const src = join(work, 'src');
  for (const [name, size] of Object.entries(FILES)) {
    await mkdir(join(src, name, '..'), { recursive: true });
    await writeFile(join(src, name), randomBytes(size));
  }
  await rclone('mkdir', 'val:museum');
  await rclone('copy', src, 'val:museum/collection');
  await rclone('check', src, 'val:museum/collection');
  t.pass('rclone check: source and gateway agree after copy');
  const lsf = (await rclone('lsf', '-R', '--files-only', 'val:museum/collection')).stdout.trim().split('\n').sort();
  t.same(lsf, Object.keys(FILES).sort(), 'lsf lists every file by its exact name');

  // Change the source: one file edited, one removed, one added; sync mirrors it.
  await writeFile(join(src, 'readme.txt'), 'edited');
  await rm(join(src, 'drawer 2/日本語/標本.png'));
  await writeFile(join(src, 'drawer 2/new one.txt'), 'added');
  await rclone('sync', src, 'val:museum/collection');
  await rclone('check', src, 'val:museum/collection');
  t.pass('rclone check: agree after sync');
  const after = (await rclone('lsf', '-R', '--files-only', 'val:museum/collection')).stdout.trim().split('\n');
  t.notOk(after.includes('drawer 2/日本語/標本.png'), 'removed file gone');
  t.ok(after.includes('drawer 2/new one.txt'), 'new file there');

  const back = join(work, 'back');
  await rclone('copy', 'val:museum/collection', back);
  for (const name of Object.keys(FILES).filter((n) => n !== 'drawer 2/日本語/標本.png')) {
    t.ok((await readFile(join(back, name))).equals(await readFile(join(src, name))), `${name} byte-identical after the round trip`);
  }
  const dirs = (await rclone('lsf', '--dirs-only', 'val:museum/collection')).stdout.trim().split('\n').sort();
  t.same(dirs, ['big/', 'drawer 1/', 'drawer 2/'], 'directories from common prefixes');
});
