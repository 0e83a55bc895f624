// The AWS CLI (Debian's awscli, v2) against a real gateway, unmodified:
// mb, cp up and down (a multipart upload included), ls, sync, head-object
// with metadata, presigned URLs, rm --recursive and rb.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { ACCESS_KEY, SECRET_KEY, removeDir, startGateway, tempDir } from '../helpers/gateway.js';

const exec = promisify(execFile);
// Debian's package; a pip-installed v1 earlier on PATH would be another client.
const AWS = existsSync('/usr/bin/aws') ? '/usr/bin/aws' : 'aws';

t.test('aws s3 and s3api: the everyday commands work unmodified', async (t) => {
  const gw = await startGateway();
  const work = await tempDir('valentine-awscli-');
  t.teardown(async () => {
    await gw.stop();
    await removeDir(gw.dataDir);
    await removeDir(work);
  });
  const { AWS_CA_BUNDLE: _ca, AWS_PROFILE: _p, ...inherited } = process.env;
  const env = {
    ...inherited,
    AWS_ACCESS_KEY_ID: ACCESS_KEY,
    AWS_SECRET_ACCESS_KEY: SECRET_KEY,
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: join(work, 'no-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(work, 'no-credentials'),
    AWS_PAGER: '',
  };
  const aws = async (...args: string[]) => (await exec(AWS, ['--endpoint-url', gw.s3Url, ...args], { env, maxBuffer: 16 << 20 })).stdout;

  await aws('s3', 'mb', 's3://herbarium');
  const small = randomBytes(1234);
  const large = randomBytes(20 * 2 ** 20 + 17); // above the CLI's 8 MiB multipart threshold
  await writeFile(join(work, 'small.bin'), small);
  await writeFile(join(work, 'large.bin'), large);
  await aws('s3', 'cp', join(work, 'small.bin'), 's3://herbarium/sheets/small.bin', '--metadata', 'collector=Linnaeus', '--content-type', 'image/tiff');
  await aws('s3', 'cp', join(work, 'large.bin'), 's3://herbarium/sheets/large.bin');
  const ls = await aws('s3', 'ls', 's3://herbarium/sheets/');
  t.match(ls, /1234 small\.bin/, 'ls shows the small file and its size');
  t.match(ls, new RegExp(`${large.length} large\\.bin`), 'ls shows the multipart upload whole');

  const head = JSON.parse(await aws('s3api', 'head-object', '--bucket', 'herbarium', '--key', 'sheets/small.bin')) as Record<string, unknown>;
  t.equal(head.ContentLength, 1234);
  t.equal(head.ContentType, 'image/tiff', 'content type kept');
  t.same(head.Metadata, { collector: 'Linnaeus' }, 'user metadata kept');
  const largeHead = JSON.parse(await aws('s3api', 'head-object', '--bucket', 'herbarium', '--key', 'sheets/large.bin')) as { ETag: string };
  t.match(largeHead.ETag, /-3"$/, 'multipart ETag: three parts');

  await aws('s3', 'cp', 's3://herbarium/sheets/large.bin', join(work, 'large.back'));
  t.ok((await readFile(join(work, 'large.back'))).equals(large), 'large file downloads byte-identical');

  const tree = join(work, 'tree');
  await mkdir(join(tree, 'a b', 'ç'), { recursive: true });
  await writeFile(join(tree, 'a b', 'one.txt'), 'one');
  await writeFile(join(tree, 'a b', 'ç', 'two.txt'), 'two');
  await aws('s3', 'sync', tree, 's3://herbarium/tree');
  const listed = await aws('s3', 'ls', '--recursive', 's3://herbarium/tree/');
  t.match(listed, /tree\/a b\/one\.txt/, 'sync uploads names with spaces');
  t.match(listed, /tree\/a b\/ç\/two\.txt/, 'and unicode');
  t.equal((await aws('s3', 'sync', tree, 's3://herbarium/tree')).trim(), '', 'a second sync finds nothing to do');

  const url = (await aws('s3', 'presign', 's3://herbarium/sheets/small.bin', '--expires-in', '60')).trim();
  const fetched = Buffer.from(await (await fetch(url)).arrayBuffer());
  t.ok(fetched.equals(small), 'a presigned URL from the CLI downloads the object');

  await aws('s3', 'rm', '--recursive', 's3://herbarium/');
  t.equal((await aws('s3', 'ls', 's3://herbarium/')).trim(), '', 'rm --recursive empties the bucket');
  await aws('s3', 'rb', 's3://herbarium');
  t.notMatch(await aws('s3', 'ls'), /herbarium/, 'rb removes the bucket');
});
