import t, { type Test } from 'tap';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { authenticate, deriveSigningKey, type AuthContext, type Credential } from '../../../gateway/s3/auth.js';
import { createChecksum } from '../../../gateway/s3/checksums.js';
import { S3Error, type S3ErrorCode } from '../../../gateway/s3/errors.js';
import { decodePayload, storedContentEncoding } from '../../../gateway/s3/payload.js';

const EMPTY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const AK = 'AKIAIOSFODNN7EXAMPLE';
const SK = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const alice: Credential = { accessKey: AK, secretKey: SK, role: 'readwrite' };
const SEED = '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9';
const AMZ_DATE = '20130524T000000Z';
const SCOPE = '20130524/us-east-1/s3/aws4_request';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const hmac = (key: Buffer, s: string) => createHmac('sha256', key).update(s).digest('hex');

/** Feeds `body` in pieces of the given sizes (the last piece takes the rest). */
function source(body: Buffer, pieces?: number[] | 'bytewise'): Readable {
  const parts: Buffer[] = [];
  if (pieces === 'bytewise') {
    for (let i = 0; i < body.length; i++) parts.push(body.subarray(i, i + 1));
  } else if (pieces === undefined) {
    parts.push(body);
  } else {
    let pos = 0;
    for (const n of pieces) { parts.push(body.subarray(pos, pos + n)); pos += n; }
    parts.push(body.subarray(pos));
  }
  return Readable.from(parts.filter((p) => p.length > 0), { objectMode: false });
}

interface Outcome { data: Buffer; trailers: Record<string, string>; error?: S3Error; declared: number | undefined }

async function run(raw: Readable, ctx: AuthContext, headers: IncomingHttpHeaders): Promise<Outcome> {
  const decoded = decodePayload(raw, ctx, headers);
  const parts: Buffer[] = [];
  try {
    for await (const c of decoded.stream) parts.push(c as Buffer);
  } catch (err) {
    if (!(err instanceof S3Error)) throw err;
    return { data: Buffer.concat(parts), trailers: decoded.trailers(), error: err, declared: decoded.declaredLength };
  }
  return { data: Buffer.concat(parts), trailers: decoded.trailers(), declared: decoded.declaredLength };
}

function expectError(tt: Test, out: Outcome, code: S3ErrorCode, what: string): void {
  tt.ok(out.error instanceof S3Error, `${what}: fails with an S3Error`);
  tt.equal(out.error?.code, code, `${what}: ${code}`);
}

// ---------------------------------------------------------------------------
// The AWS chunked upload example (sigv4-streaming.html)

const docHeaders: IncomingHttpHeaders = {
  host: 's3.amazonaws.com',
  'x-amz-date': AMZ_DATE,
  'x-amz-storage-class': 'REDUCED_REDUNDANCY',
  authorization: `AWS4-HMAC-SHA256 Credential=${AK}/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=${SEED}`,
  'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
  'content-encoding': 'aws-chunked',
  'x-amz-decoded-content-length': '66560',
  'content-length': '66824',
};
const docCtx = authenticate({ method: 'PUT', url: '/examplebucket/chunkObject.txt', headers: docHeaders },
  (ak) => (ak === AK ? alice : undefined), { now: new Date('2013-05-24T00:00:00Z') });
const docBody = Buffer.concat([
  Buffer.from('10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n'),
  Buffer.alloc(65536, 'a'),
  Buffer.from('\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n'),
  Buffer.alloc(1024, 'a'),
  Buffer.from('\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n'),
]);

t.test('AWS chunked upload example decodes and verifies', async (tt) => {
  tt.equal(docBody.length, 66824, 'encoded length matches Content-Length of the example');
  tt.equal(docCtx.signing?.seedSignature, SEED);
  // the documented chunk signatures are exactly what the chain produces
  const key = deriveSigningKey(SK, '20130524', 'us-east-1', 's3');
  const sig1 = hmac(key, `AWS4-HMAC-SHA256-PAYLOAD\n${AMZ_DATE}\n${SCOPE}\n${SEED}\n${EMPTY}\n${sha(Buffer.alloc(65536, 'a'))}`);
  tt.equal(sig1, 'ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648');
  const sig2 = hmac(key, `AWS4-HMAC-SHA256-PAYLOAD\n${AMZ_DATE}\n${SCOPE}\n${sig1}\n${EMPTY}\n${sha(Buffer.alloc(1024, 'a'))}`);
  tt.equal(sig2, '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497');
  const sig3 = hmac(key, `AWS4-HMAC-SHA256-PAYLOAD\n${AMZ_DATE}\n${SCOPE}\n${sig2}\n${EMPTY}\n${EMPTY}`);
  tt.equal(sig3, 'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9');

  const whole = await run(source(docBody), docCtx, docHeaders);
  tt.equal(whole.error, undefined);
  tt.equal(whole.data.length, 66560);
  tt.ok(whole.data.equals(Buffer.alloc(66560, 'a')));
  tt.same(whole.trailers, {});
  tt.equal(whole.declared, 66560);

  // random TCP-like splits, including splits inside headers and CRLFs
  let seed = 7;
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  for (let round = 0; round < 20; round++) {
    const pieces: number[] = [];
    let total = 0;
    while (total < docBody.length) { const n = 1 + rnd(round < 10 ? 97 : 9000); pieces.push(n); total += n; }
    const out = await run(source(docBody, pieces), docCtx, docHeaders);
    tt.equal(out.error, undefined, `split round ${round}`);
    tt.ok(out.data.equals(Buffer.alloc(66560, 'a')), `split round ${round}: data`);
  }
  // every split point around the chunk boundaries
  for (const at of [1, 2, 85, 86, 87, 88, 65623, 65624, 65625, 65626, 65710, 65711, 65712, 66734, 66735, 66736, 66737, 66820, 66821, 66822, 66823]) {
    const out = await run(source(docBody, [at]), docCtx, docHeaders);
    tt.equal(out.error, undefined, `split at ${at}`);
    tt.equal(out.data.length, 66560);
  }
});

t.test('signed chunks: tampering, truncation and framing errors', async (tt) => {
  // flip one byte of the second chunk's data
  const tampered = Buffer.from(docBody);
  tampered[65700] = 0x62;
  const out = await run(source(tampered, [1000, 70000]), docCtx, docHeaders);
  expectError(tt, out, 'SignatureDoesNotMatch', 'tampered chunk data');
  tt.ok(out.data.length <= 65536, 'no byte of the tampered chunk was released');
  tt.ok(out.data.equals(Buffer.alloc(out.data.length, 'a')));

  const first = Buffer.from(docBody);
  first[200] = 0x62;
  const out1 = await run(source(first), docCtx, docHeaders);
  expectError(tt, out1, 'SignatureDoesNotMatch', 'tampered first chunk');
  tt.equal(out1.data.length, 0, 'nothing unverified was released');

  // a wrong signature on the final chunk
  const badFinal = Buffer.from(docBody.toString('latin1').replace('0;chunk-signature=b6c6', '0;chunk-signature=b6c7'), 'latin1');
  expectError(tt, await run(source(badFinal), docCtx, docHeaders), 'SignatureDoesNotMatch', 'final chunk signature');

  // chunks reordered (swap signatures) break the chain
  const swapped = Buffer.from(docBody.toString('latin1')
    .replace('ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648', 'X'.repeat(64))
    .replace('0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497', 'ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648')
    .replace('X'.repeat(64), '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497'), 'latin1');
  expectError(tt, await run(source(swapped), docCtx, docHeaders), 'SignatureDoesNotMatch', 'swapped signatures');

  // truncated at many places
  for (const cut of [0, 10, 87, 88, 5000, 65624, 65625, 65626, 66000, 66735, 66737, 66820]) {
    const o = await run(source(docBody.subarray(0, cut)), docCtx, docHeaders);
    expectError(tt, o, 'IncompleteBody', `truncated at ${cut}`);
  }
  // the closing CRLF alone may be missing
  const noFinalCrlf = await run(source(docBody.subarray(0, docBody.length - 2)), docCtx, docHeaders);
  tt.equal(noFinalCrlf.error, undefined, 'missing final CRLF tolerated');

  // decoded length mismatch
  expectError(tt, await run(source(docBody), docCtx, { ...docHeaders, 'x-amz-decoded-content-length': '66561' }), 'IncompleteBody', 'declared longer');
  expectError(tt, await run(source(docBody), docCtx, { ...docHeaders, 'x-amz-decoded-content-length': '66559' }), 'IncompleteBody', 'declared shorter');
  expectError(tt, await run(source(docBody), docCtx, { ...docHeaders, 'x-amz-decoded-content-length': 'lots' }), 'InvalidArgument', 'bad declared length');

  // framing
  const text = docBody.toString('latin1');
  const framing: Array<[string, string]> = [
    ['missing chunk-signature', text.replace('10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648', '10000')],
    ['bad hex size', text.replace('10000;', '1000g;')],
    ['size too large for the body', text.replace('400;', '401;')],
    ['LF without CR in header', text.replace('400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n', '400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\n')],
    ['garbage after the body', text + 'extra'],
    ['huge chunk size', text.replace('10000;', 'ffffffffffff;')],
  ];
  for (const [what, body] of framing) {
    const o = await run(source(Buffer.from(body, 'latin1')), docCtx, { ...docHeaders, 'x-amz-decoded-content-length': undefined });
    tt.ok(o.error?.code === 'InvalidRequest' || o.error?.code === 'IncompleteBody' || o.error?.code === 'SignatureDoesNotMatch', `${what}: rejected (${o.error?.code})`);
  }
  // an endless header line is bounded
  const endless = await run(source(Buffer.alloc(100_000, '1'), [4000, 4000, 4000]), docCtx, docHeaders);
  expectError(tt, endless, 'InvalidRequest', 'endless header line');
  // missing CRLF after data
  const noCrlf = Buffer.from(text.replace('a\r\n400;', 'aXX400;'), 'latin1');
  expectError(tt, await run(source(noCrlf), docCtx, docHeaders), 'InvalidRequest', 'no CRLF after data');
});

// ---------------------------------------------------------------------------
// Signed bodies built here, with trailers

function signedChunked(ctx: AuthContext, chunks: Buffer[], trailer?: Array<[string, string]>, corruptTrailerSig = false): Buffer {
  const s = ctx.signing!;
  let prev = s.seedSignature;
  const out: Buffer[] = [];
  for (const c of [...chunks, Buffer.alloc(0)]) {
    const sig = hmac(s.key, `AWS4-HMAC-SHA256-PAYLOAD\n${s.amzDate}\n${s.scope}\n${prev}\n${EMPTY}\n${sha(c)}`);
    out.push(Buffer.from(`${c.length.toString(16)};chunk-signature=${sig}\r\n`));
    if (c.length > 0) out.push(c, Buffer.from('\r\n'));
    prev = sig;
  }
  if (trailer === undefined) {
    out.push(Buffer.from('\r\n'));
  } else {
    const canonical = trailer.map(([k, v]) => `${k}:${v}\n`).join('');
    let sig = hmac(s.key, `AWS4-HMAC-SHA256-TRAILER\n${s.amzDate}\n${s.scope}\n${prev}\n${sha(canonical)}`);
    if (corruptTrailerSig) sig = (sig[0] === '0' ? '1' : '0') + sig.slice(1);
    out.push(Buffer.from(trailer.map(([k, v]) => `${k}:${v}\r\n`).join('') + `x-amz-trailer-signature:${sig}\r\n\r\n`));
  }
  return Buffer.concat(out);
}

const trailerCtx: AuthContext = {
  credential: alice,
  payload: { mode: 'streaming-signed', trailer: true },
  signing: { key: deriveSigningKey(SK, '20240102', 'eu-west-3', 's3'), amzDate: '20240102T030405Z', scope: '20240102/eu-west-3/s3/aws4_request', seedSignature: 'aa'.repeat(32) },
};

t.test('signed chunks with a signed trailer', async (tt) => {
  const data = [Buffer.from('hello '), Buffer.from('chunked '), Buffer.from('world')];
  const all = Buffer.concat(data);
  const crc = createChecksum('CRC32');
  crc.update(all);
  const body = signedChunked(trailerCtx, data, [['x-amz-checksum-crc32', crc.digest()]]);
  const headers = { 'x-amz-decoded-content-length': String(all.length), 'x-amz-trailer': 'x-amz-checksum-crc32' };

  const whole = await run(source(body), trailerCtx, headers);
  tt.equal(whole.error, undefined);
  tt.equal(whole.data.toString(), 'hello chunked world');
  tt.same(whole.trailers, { 'x-amz-checksum-crc32': crc.digest() });

  // one byte at a time, and every two-piece split
  const bytewise = await run(source(body, 'bytewise'), trailerCtx, headers);
  tt.equal(bytewise.error, undefined, 'bytewise');
  tt.equal(bytewise.data.toString(), 'hello chunked world', 'bytewise data');
  tt.same(bytewise.trailers, whole.trailers, 'bytewise trailers');
  let allOk = true;
  for (let at = 1; at < body.length; at++) {
    const o = await run(source(body, [at]), trailerCtx, headers);
    if (o.error !== undefined || o.data.toString() !== 'hello chunked world' || o.trailers['x-amz-checksum-crc32'] !== crc.digest()) {
      allOk = false;
      tt.fail(`split at ${at}: ${o.error?.code}`);
    }
  }
  tt.ok(allOk, `all ${body.length - 1} split points decode identically`);

  // a forged trailer value or signature is refused
  const forged = signedChunked(trailerCtx, data, [['x-amz-checksum-crc32', crc.digest()]]);
  const forgedText = forged.toString('latin1').replace(crc.digest(), 'AAAAAA==');
  expectError(tt, await run(source(Buffer.from(forgedText, 'latin1')), trailerCtx, headers), 'SignatureDoesNotMatch', 'forged trailer value');
  expectError(tt, await run(source(signedChunked(trailerCtx, data, [['x-amz-checksum-crc32', crc.digest()]], true)), trailerCtx, headers), 'SignatureDoesNotMatch', 'forged trailer signature');
  // trailer signature missing
  const unsignedTrailer = Buffer.from(body.toString('latin1').replace(/x-amz-trailer-signature:[0-9a-f]+\r\n/, ''), 'latin1');
  const o = await run(source(unsignedTrailer), trailerCtx, headers);
  tt.ok(o.error?.code === 'InvalidRequest', `missing trailer signature rejected (${o.error?.code})`);
  // body ending before the trailer
  const cut = body.toString('latin1').indexOf('x-amz-checksum');
  expectError(tt, await run(source(body.subarray(0, cut)), trailerCtx, headers), 'IncompleteBody', 'ends before the trailer');
});

t.test('signed chunks, bytewise, no trailer, empty body', async (tt) => {
  const ctx: AuthContext = { ...trailerCtx, payload: { mode: 'streaming-signed', trailer: false } };
  const data = [randomBytes(7), randomBytes(1), randomBytes(300)];
  const body = signedChunked(ctx, data);
  const o = await run(source(body, 'bytewise'), ctx, { 'x-amz-decoded-content-length': '308' });
  tt.equal(o.error, undefined);
  tt.ok(o.data.equals(Buffer.concat(data)));
  const empty = await run(source(signedChunked(ctx, [])), ctx, { 'x-amz-decoded-content-length': '0' });
  tt.equal(empty.error, undefined);
  tt.equal(empty.data.length, 0);
});

// ---------------------------------------------------------------------------
// STREAMING-UNSIGNED-PAYLOAD-TRAILER

const unsignedCtx: AuthContext = { credential: alice, payload: { mode: 'streaming-unsigned-trailer' } };

function unsignedChunked(chunks: Buffer[], trailer: string, ext = ''): Buffer {
  const out: Buffer[] = [];
  for (const c of chunks) out.push(Buffer.from(`${c.length.toString(16)}${ext}\r\n`), c, Buffer.from('\r\n'));
  out.push(Buffer.from(`0${ext}\r\n${trailer}\r\n`));
  return Buffer.concat(out);
}

t.test('unsigned chunks with an x-amz-checksum-crc32 trailer', async (tt) => {
  const data = [Buffer.from('The quick brown fox '), Buffer.from('jumps over the lazy dog')];
  const all = Buffer.concat(data);
  const crc = createChecksum('CRC32');
  crc.update(all);
  const value = crc.digest();
  tt.equal(value, 'QU+jOQ==', 'CRC32 of the pangram (0x414FA339)');
  const headers = { 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': String(all.length), 'x-amz-trailer': 'x-amz-checksum-crc32' };
  const body = unsignedChunked(data, `x-amz-checksum-crc32:${value}\r\n`);

  for (const pieces of [undefined, 'bytewise' as const, [3], [25], [26, 1, 1, 1]]) {
    const o = await run(source(body, pieces), unsignedCtx, headers);
    tt.equal(o.error, undefined, `pieces ${JSON.stringify(pieces)}`);
    tt.equal(o.data.toString(), 'The quick brown fox jumps over the lazy dog');
    tt.same(o.trailers, { 'x-amz-checksum-crc32': value });
  }
  // optional chunk-signature extension is tolerated
  const withExt = unsignedChunked(data, `x-amz-checksum-crc32:${value}\r\n`, ';chunk-signature=' + '0'.repeat(64));
  const o = await run(source(withExt, 'bytewise'), unsignedCtx, headers);
  tt.equal(o.error, undefined);
  tt.same(o.trailers, { 'x-amz-checksum-crc32': value });
  // trailer name case is normalised, whitespace trimmed
  const upper = await run(source(unsignedChunked(data, `X-Amz-Checksum-CRC32: ${value} \r\n`)), unsignedCtx, headers);
  tt.same(upper.trailers, { 'x-amz-checksum-crc32': value });
  // no trailer at all, and a body that stops after the final chunk
  const none = await run(source(unsignedChunked(data, '')), unsignedCtx, headers);
  tt.equal(none.error, undefined);
  tt.same(none.trailers, {});
  const stops = await run(source(Buffer.from(`${unsignedChunked(data, '').toString('latin1').slice(0, -2)}`, 'latin1')), unsignedCtx, headers);
  tt.equal(stops.error, undefined);
  // truncated
  expectError(tt, await run(source(body.subarray(0, 30)), unsignedCtx, headers), 'IncompleteBody', 'truncated');
  expectError(tt, await run(source(body.subarray(0, body.length - 10)), unsignedCtx, headers), 'IncompleteBody', 'truncated in trailer');
  // malformed trailer line
  const bad = await run(source(unsignedChunked(data, 'no colon here\r\n')), unsignedCtx, headers);
  expectError(tt, bad, 'InvalidRequest', 'malformed trailer');
  // declared length mismatch
  expectError(tt, await run(source(body), unsignedCtx, { ...headers, 'x-amz-decoded-content-length': '10' }), 'IncompleteBody', 'declared length');
});

// ---------------------------------------------------------------------------
// Plain bodies

t.test('signed / unsigned bodies pass through', async (tt) => {
  const data = randomBytes(100_000);
  const signedCtx: AuthContext = { credential: alice, payload: { mode: 'signed', sha256: sha(data) } };
  const o = await run(source(data, [10, 5000, 60000]), signedCtx, { 'content-length': '100000' });
  tt.equal(o.error, undefined);
  tt.ok(o.data.equals(data), 'bytes unchanged (the caller hashes them)');
  tt.equal(o.declared, 100000);
  const u = await run(source(data), { credential: alice, payload: { mode: 'unsigned' } }, {});
  tt.ok(u.data.equals(data));
  tt.equal(u.declared, undefined);
  expectError(tt, await run(source(data.subarray(0, 99_999)), signedCtx, { 'content-length': '100000' }), 'IncompleteBody', 'short body');
  // a source that fails mid-way
  const failing = new Readable({
    read() {
      this.push(data.subarray(0, 1000));
      this.destroy(new Error('ECONNRESET'));
    },
  });
  expectError(tt, await run(failing, signedCtx, { 'content-length': '100000' }), 'IncompleteBody', 'source error');
});

t.test('storedContentEncoding strips aws-chunked', async (tt) => {
  tt.equal(storedContentEncoding({ 'content-encoding': 'aws-chunked' }), undefined);
  tt.equal(storedContentEncoding({ 'content-encoding': 'aws-chunked,gzip' }), 'gzip');
  tt.equal(storedContentEncoding({ 'content-encoding': 'gzip, aws-chunked' }), 'gzip');
  tt.equal(storedContentEncoding({}), undefined);
});

t.test('throughput (informational)', async (tt) => {
  const chunk = randomBytes(1 << 20);
  const n = 128;
  const frame: Buffer[] = [];
  for (let i = 0; i < n; i++) frame.push(Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n'));
  frame.push(Buffer.from('0\r\n\r\n'));
  // deliver in 64 KiB socket-sized pieces
  const body = Buffer.concat(frame);
  const pieces: Buffer[] = [];
  for (let i = 0; i < body.length; i += 65536) pieces.push(body.subarray(i, i + 65536));
  const start = process.hrtime.bigint();
  const decoded = decodePayload(Readable.from(pieces), unsignedCtx, {});
  let total = 0;
  for await (const c of decoded.stream) total += (c as Buffer).length;
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  tt.equal(total, n * chunk.length);
  tt.comment(`unsigned aws-chunked decode: ${(total / 1048576 / secs).toFixed(0)} MiB/s`);
});

t.test('signed throughput (informational)', async (tt) => {
  const ctx: AuthContext = { ...trailerCtx, payload: { mode: 'streaming-signed', trailer: false } };
  const chunk = randomBytes(1 << 20);
  const n = 64;
  const body = signedChunked(ctx, Array.from({ length: n }, () => chunk));
  const pieces: Buffer[] = [];
  for (let i = 0; i < body.length; i += 65536) pieces.push(body.subarray(i, i + 65536));
  const start = process.hrtime.bigint();
  const decoded = decodePayload(Readable.from(pieces), ctx, { 'x-amz-decoded-content-length': String(n << 20) });
  let total = 0;
  for await (const c of decoded.stream) total += (c as Buffer).length;
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  tt.equal(total, n * chunk.length);
  tt.comment(`signed aws-chunked decode (sha256 per chunk): ${(total / 1048576 / secs).toFixed(0)} MiB/s`);
});
