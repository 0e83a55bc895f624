// kill -9 of the gateway while cp is writing into the mount: after a
// restart the stale mount is cleared and the drive comes back, files closed
// before the kill are intact, and the file being copied is absent or whole,
// never torn.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { ListBucketsCommand } from '@aws-sdk/client-s3';
import { removeDir, s3Client, startGateway, tempDir } from '../helpers/gateway.js';
import { q, sh, shStatus, unmount } from './helpers.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

t.test('kill -9 during cp, then restart', async (t) => {
  const root = await tempDir('valentine-mount-crash-');
  const mnt = join(root, 'mnt');
  const dataDir = join(root, 'data');
  t.teardown(async () => {
    await unmount(mnt);
    await removeDir(root);
  });
  const closed = randomBytes(1024 * 1024);
  const big = randomBytes(200 * 1024 * 1024);
  await writeFile(join(root, 'closed.bin'), closed);
  await writeFile(join(root, 'big.bin'), big);

  const gw1 = await startGateway({ dataDir, args: ['--mount', mnt] });
  t.teardown(() => gw1.stop());
  await sh(`mkdir ${q(`${mnt}/crash`)} && cp ${q(join(root, 'closed.bin'))} ${q(`${mnt}/crash/closed.bin`)}`);
  for (let i = 0; i < 20; i++) await sh(`echo ${i} > ${q(`${mnt}/crash/small-${i}`)}`);

  const cp = spawn('cp', [join(root, 'big.bin'), `${mnt}/crash/big.bin`], { stdio: 'ignore' });
  const cpDone = new Promise<number | null>((res) => cp.once('exit', (code) => res(code)));
  // Let the copy get going, then crash the gateway under it.
  await new Promise((r) => setTimeout(r, 400));
  await gw1.kill();
  const cpCode = await Promise.race([cpDone, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 30_000))]);
  t.not(cpCode, 'hung', 'cp does not hang on the dead mount');
  if (cpCode === 'hung') cp.kill('SIGKILL');
  t.match((await shStatus(`ls ${q(mnt)}`)).stderr, /not connected/, 'the mount is stale after the crash');

  const gw2 = await startGateway({ dataDir, args: ['--mount', mnt] });
  t.teardown(() => gw2.stop());
  t.ok(gw2.logs.some((l) => l.includes('cleared a stale mount')), 'the stale mount was detected and cleared');
  t.equal((await sh(`sha256sum < ${q(`${mnt}/crash/closed.bin`)}`)).split(' ')[0], sha(closed), 'a file closed before the kill is intact');
  for (let i = 0; i < 20; i++) t.equal(await sh(`cat ${q(`${mnt}/crash/small-${i}`)}`), `${i}\n`);
  const partial = await shStatus(`sha256sum < ${q(`${mnt}/crash/big.bin`)}`);
  if (partial.code === 0) t.equal(partial.stdout.split(' ')[0], sha(big), 'the copied file is complete');
  else t.match(partial.stderr, /No such file/, 'the copied file is absent');
  t.equal((await sh(`ls ${q(mnt)}`)).trim(), 'crash', 'the drive is back');
});

t.test('SIGTERM commits what open files hold and unmounts cleanly', async (t) => {
  const root = await tempDir('valentine-mount-term-');
  const mnt = join(root, 'mnt');
  const dataDir = join(root, 'data');
  t.teardown(async () => {
    await unmount(mnt);
    await removeDir(root);
  });
  const gw1 = await startGateway({ dataDir, args: ['--mount', mnt] });
  t.teardown(() => gw1.stop());
  await sh(`mkdir ${q(`${mnt}/term`)}`);
  // A writer that keeps its file open past the shutdown.
  const holder = spawn('sh', ['-c', `exec 3>${q(`${mnt}/term/held.txt`)}; echo held-open >&3; echo ready; sleep 60`], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.teardown(() => void (holder.exitCode === null && holder.kill('SIGKILL')));
  await new Promise<void>((res) => holder.stdout!.once('data', () => res()));
  await gw1.stop();
  const mounts = await sh('cat /proc/self/mounts');
  t.notMatch(mounts, new RegExp(` ${mnt.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} `), 'no mount left behind');
  holder.kill('SIGKILL');
  const gw2 = await startGateway({ dataDir, args: ['--mount', mnt] });
  t.teardown(() => gw2.stop());
  t.notOk(gw2.logs.some((l) => l.includes('cleared a stale mount')), 'nothing stale to clear after a clean stop');
  t.equal(await sh(`cat ${q(`${mnt}/term/held.txt`)}`), 'held-open\n', 'the open file was committed at shutdown');
});

t.test('an unmount from outside is noticed and logged; S3 keeps serving', async (t) => {
  const root = await tempDir('valentine-mount-ext-');
  const mnt = join(root, 'mnt');
  t.teardown(async () => {
    await unmount(mnt);
    await removeDir(root);
  });
  const gw = await startGateway({ dataDir: join(root, 'data'), args: ['--mount', mnt] });
  t.teardown(() => gw.stop());
  await sh(`fusermount -u ${q(mnt)}`);
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && !gw.logs.some((l) => l.includes('unmounted from outside'))) await new Promise((r) => setTimeout(r, 250));
  t.ok(gw.logs.some((l) => l.includes('unmounted from outside')), 'logged');
  const s3 = s3Client(gw);
  t.teardown(() => s3.destroy());
  t.ok(Array.isArray((await s3.send(new ListBucketsCommand({}))).Buckets ?? []), 'S3 answers');
});
