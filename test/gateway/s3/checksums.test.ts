import t, { type Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { Crc32cJs, Crc64NvmeJs } from '@aws-sdk/checksums/crc';
import { CHECKSUM_ALGORITHMS, createChecksum, requestedChecksum, type ChecksumAlgorithm } from '../../../gateway/s3/checksums.js';
import { S3Error, type S3ErrorCode } from '../../../gateway/s3/errors.js';

const hex = (b64: string) => Buffer.from(b64, 'base64').toString('hex');
const digestOf = (alg: ChecksumAlgorithm, ...parts: Buffer[]) => {
  const c = createChecksum(alg);
  for (const p of parts) c.update(p);
  return c.digest();
};

t.test('check values for "123456789"', async (tt) => {
  const input = Buffer.from('123456789');
  tt.equal(hex(digestOf('CRC32', input)), 'cbf43926');
  tt.equal(hex(digestOf('CRC32C', input)), 'e3069283');
  tt.equal(hex(digestOf('CRC64NVME', input)), 'ae8b14860a799888');
  tt.equal(hex(digestOf('SHA1', input)), 'f7c3bc1d808e04732adf679965ccc34ca7ae3441');
  tt.equal(hex(digestOf('SHA256', input)), '15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225');
  // empty input
  tt.equal(digestOf('CRC32'), 'AAAAAA==');
  tt.equal(digestOf('CRC32C'), 'AAAAAA==');
  tt.equal(digestOf('CRC64NVME'), 'AAAAAAAAAAA=');
  // base64 as S3 returns it
  tt.equal(digestOf('CRC32', input), Buffer.from('cbf43926', 'hex').toString('base64'));
});

t.test('equal to the AWS SDK implementations on random data split at random boundaries', async (tt) => {
  let seed = 12345;
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  const sizes = [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 255, 1000, 4096, 65537, 1_000_003];
  for (const size of sizes) {
    const data = randomBytes(size);
    const sdkC = new Crc32cJs();
    sdkC.update(data);
    const sdkN = new Crc64NvmeJs();
    sdkN.update(data);
    const expect: Record<ChecksumAlgorithm, string> = {
      CRC32: Buffer.from((crc32(data) >>> 0).toString(16).padStart(8, '0'), 'hex').toString('base64'),
      CRC32C: Buffer.from(await sdkC.digest()).toString('base64'),
      CRC64NVME: Buffer.from(await sdkN.digest()).toString('base64'),
      SHA1: createHash('sha1').update(data).digest('base64'),
      SHA256: createHash('sha256').update(data).digest('base64'),
    };
    for (const alg of CHECKSUM_ALGORITHMS) {
      tt.equal(digestOf(alg, data), expect[alg], `${alg} size ${size} one piece`);
      const pieces: Buffer[] = [];
      let pos = 0;
      while (pos < size) { const n = 1 + rnd(Math.min(size, 3000)); pieces.push(data.subarray(pos, pos + n)); pos += n; }
      tt.equal(digestOf(alg, ...pieces), expect[alg], `${alg} size ${size} in ${pieces.length} pieces`);
    }
  }
});

t.test('digest() is non-destructive', async (tt) => {
  for (const alg of CHECKSUM_ALGORITHMS) {
    const c = createChecksum(alg);
    c.update(Buffer.from('1234'));
    const d1 = c.digest();
    tt.equal(c.digest(), d1, `${alg}: same digest twice`);
    c.update(Buffer.from('56789'));
    tt.equal(c.digest(), digestOf(alg, Buffer.from('123456789')), `${alg}: can continue after digest`);
  }
});

t.test('speed (informational)', async (tt) => {
  const data = randomBytes(64 << 20);
  for (const alg of ['CRC32C', 'CRC64NVME'] as const) {
    const c = createChecksum(alg);
    const start = process.hrtime.bigint();
    for (let i = 0; i < data.length; i += 1 << 20) c.update(data.subarray(i, i + (1 << 20)));
    c.digest();
    const secs = Number(process.hrtime.bigint() - start) / 1e9;
    tt.comment(`${alg}: ${(64 / secs).toFixed(0)} MiB/s`);
  }
  tt.pass();
});

function expectCode(tt: Test, fn: () => unknown, code: S3ErrorCode, what: string): void {
  try {
    fn();
    tt.fail(`${what}: expected ${code}`);
  } catch (err) {
    tt.ok(err instanceof S3Error && err.code === code, `${what}: ${code} (${String(err)})`);
  }
}

t.test('requestedChecksum', async (tt) => {
  const crc = digestOf('CRC32', Buffer.from('x'));
  tt.equal(requestedChecksum({}), undefined);
  tt.equal(requestedChecksum({ 'x-amz-checksum-mode': 'ENABLED', 'x-amz-checksum-type': 'FULL_OBJECT' }), undefined);
  tt.same(requestedChecksum({ 'x-amz-checksum-crc32': crc }), { algorithm: 'CRC32', expected: crc, inTrailer: false });
  tt.same(requestedChecksum({ 'x-amz-checksum-crc32': crc, 'x-amz-sdk-checksum-algorithm': 'crc32' }), { algorithm: 'CRC32', expected: crc, inTrailer: false });
  tt.same(requestedChecksum({ 'x-amz-trailer': 'x-amz-checksum-crc64nvme', 'x-amz-sdk-checksum-algorithm': 'CRC64NVME' }), { algorithm: 'CRC64NVME', inTrailer: true });
  tt.same(requestedChecksum({ 'x-amz-trailer': 'X-Amz-Checksum-CRC32C' }), { algorithm: 'CRC32C', inTrailer: true });
  tt.same(requestedChecksum({ 'x-amz-sdk-checksum-algorithm': 'SHA256' }), { algorithm: 'SHA256', inTrailer: false });
  const sha1 = digestOf('SHA1', Buffer.from('x'));
  const sha256 = digestOf('SHA256', Buffer.from('x'));
  tt.same(requestedChecksum({ 'x-amz-checksum-sha1': sha1 }), { algorithm: 'SHA1', expected: sha1, inTrailer: false });
  tt.same(requestedChecksum({ 'x-amz-checksum-sha256': sha256 }), { algorithm: 'SHA256', expected: sha256, inTrailer: false });
  tt.same(requestedChecksum({ 'x-amz-checksum-crc64nvme': 'AAAAAAAAAAA=' }), { algorithm: 'CRC64NVME', expected: 'AAAAAAAAAAA=', inTrailer: false });

  expectCode(tt, () => requestedChecksum({ 'x-amz-checksum-md5': crc }), 'InvalidRequest', 'unknown algorithm header');
  expectCode(tt, () => requestedChecksum({ 'x-amz-checksum-crc32': crc, 'x-amz-checksum-crc32c': crc }), 'InvalidRequest', 'two checksum headers');
  expectCode(tt, () => requestedChecksum({ 'x-amz-checksum-crc32': crc, 'x-amz-trailer': 'x-amz-checksum-crc32' }), 'InvalidRequest', 'header and trailer');
  expectCode(tt, () => requestedChecksum({ 'x-amz-trailer': 'x-amz-checksum-xxhash' }), 'InvalidRequest', 'unknown trailer algorithm');
  expectCode(tt, () => requestedChecksum({ 'x-amz-trailer': 'x-amz-meta-foo' }), 'InvalidRequest', 'non-checksum trailer');
  expectCode(tt, () => requestedChecksum({ 'x-amz-trailer': 'x-amz-checksum-crc32,x-amz-checksum-sha1' }), 'InvalidRequest', 'two trailers');
  expectCode(tt, () => requestedChecksum({ 'x-amz-sdk-checksum-algorithm': 'MD5' }), 'InvalidRequest', 'unknown sdk algorithm');
  expectCode(tt, () => requestedChecksum({ 'x-amz-checksum-crc32': crc, 'x-amz-sdk-checksum-algorithm': 'SHA1' }), 'InvalidRequest', 'sdk algorithm disagrees');
  expectCode(tt, () => requestedChecksum({ 'x-amz-checksum-crc32': 'not base64!' }), 'InvalidDigest', 'not base64');
  expectCode(tt, () => requestedChecksum({ 'x-amz-checksum-crc32': 'AAAAAAAAAAA=' }), 'InvalidDigest', 'wrong length');
  expectCode(tt, () => requestedChecksum({ 'x-amz-checksum-sha256': sha1 }), 'InvalidDigest', 'sha1 value for sha256');
  expectCode(tt, () => requestedChecksum({ 'x-amz-checksum-crc32': 'AAAAAA' }), 'InvalidDigest', 'missing padding');
  expectCode(tt, () => requestedChecksum({ 'x-amz-checksum-crc32': '' }), 'InvalidDigest', 'empty');
});
