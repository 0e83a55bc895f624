// Without FUSE on the machine the gateway says why and serves S3 alone. The
// gateway runs in its own mount namespace whose /dev has no fuse device.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CreateBucketCommand, ListBucketsCommand } from '@aws-sdk/client-s3';
import t from 'tap';
import { ACCESS_KEY, MAIN, SECRET_KEY, removeDir, s3Client, tempDir } from '../helpers/gateway.js';

t.test('no /dev/fuse: a clear message, and S3 alone', async (t) => {
  const root = await tempDir('valentine-nofuse-');
  t.teardown(() => removeDir(root));
  const script = [
    'mount -t tmpfs tmpfs /dev',
    'mknod -m 666 /dev/null c 1 3',
    'mknod -m 666 /dev/urandom c 1 9',
    `exec "${process.execPath}" "${MAIN}" serve --data "${join(root, 'data')}" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --mount "${join(root, 'mnt')}"`,
  ].join(' && ');
  // unshare execs the shell, which execs node: one pid throughout.
  const proc = spawn('unshare', ['-m', 'sh', '-c', script], {
    env: { ...process.env, VALENTINE_ACCESS_KEY: ACCESS_KEY, VALENTINE_SECRET_KEY: SECRET_KEY },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((res) => proc.once('exit', () => res()));
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    await exited;
  });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const ready = await new Promise<{ s3?: string; mount?: string } | undefined>((res) => {
    const timer = setTimeout(() => res(undefined), 20_000);
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      if (!line.includes('valentine ready')) return;
      clearTimeout(timer);
      res(JSON.parse(line) as { s3: string; mount?: string });
    });
    proc.once('exit', () => res(undefined));
  });
  if (!ready && /unshare|Operation not permitted|mount:/.test(stderr)) {
    t.comment(`skipped: cannot make a mount namespace here: ${stderr.trim()}`);
    return;
  }
  t.ok(ready, `started: ${stderr}`);
  t.match(stderr, /not mounting .*: FUSE is not available: \/dev\/fuse is missing .*; serving S3 only/, 'says clearly why');
  t.equal(ready?.mount, undefined, 'no mount announced');
  const s3 = s3Client({ s3Url: ready!.s3! });
  t.teardown(() => s3.destroy());
  await s3.send(new CreateBucketCommand({ Bucket: 'still-serving' }));
  t.same((await s3.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name), ['still-serving'], 'S3 works');
});
