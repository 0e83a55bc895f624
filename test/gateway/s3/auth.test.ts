import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@aws-crypto/sha256-js';
import {
  authenticate, canonicalRequest, canonicalUri, computeSignature, deriveSigningKey, stringToSign, uriEncode,
  type Credential, type CredentialLookup, type SignedRequest,
} from '../../../gateway/s3/auth.js';
import { S3Error, type S3ErrorCode } from '../../../gateway/s3/errors.js';

const sha256hex = (s: string) => createHash('sha256').update(s).digest('hex');

function expectS3Error(tt: Test, fn: () => unknown, code: S3ErrorCode, message?: RegExp): void {
  try {
    fn();
    tt.fail(`expected S3Error ${code}, got success`);
  } catch (err) {
    tt.ok(err instanceof S3Error, `throws an S3Error (${String(err)})`);
    tt.equal((err as S3Error).code, code, `code ${code}`);
    if (message) tt.match((err as S3Error).message, message);
  }
}

// ---------------------------------------------------------------------------
// The AWS SigV4 test suite (aws-sig-v4-test-suite, service "service").
// Only vectors whose canonical form does not depend on path normalisation
// apply to S3; requests are given as node would present them (lower-cased
// header names, repeated headers as arrays, the target percent-encoded).

const SUITE_SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const SUITE_DATE = '20150830T123600Z';
const SUITE_SCOPE = '20150830/us-east-1/service/aws4_request';
const EMPTY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const HOST = 'example.amazonaws.com';
const base = { host: HOST, 'x-amz-date': SUITE_DATE };

interface Vector {
  name: string; method: string; url: string; headers: IncomingHttpHeaders; signed: string[];
  payload?: string; creq: string; sts: string; signature: string;
}
const UNRESERVED = '-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const vectors: Vector[] = [
  {
    name: 'get-vanilla', method: 'GET', url: '/', headers: base, signed: ['host', 'x-amz-date'],
    creq: `GET\n/\n\nhost:${HOST}\nx-amz-date:${SUITE_DATE}\n\nhost;x-amz-date\n${EMPTY}`,
    sts: 'bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63',
    signature: '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
  },
  {
    name: 'get-vanilla-empty-query-key', method: 'GET', url: '/?Param1=value1', headers: base, signed: ['host', 'x-amz-date'],
    creq: `GET\n/\nParam1=value1\nhost:${HOST}\nx-amz-date:${SUITE_DATE}\n\nhost;x-amz-date\n${EMPTY}`,
    sts: '1e24db194ed7d0eec2de28d7369675a243488e08526e8c1c73571282f7c517ab',
    signature: 'a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb',
  },
  {
    name: 'get-vanilla-query-order-key-case', method: 'GET', url: '/?Param2=value2&Param1=value1', headers: base, signed: ['host', 'x-amz-date'],
    creq: `GET\n/\nParam1=value1&Param2=value2\nhost:${HOST}\nx-amz-date:${SUITE_DATE}\n\nhost;x-amz-date\n${EMPTY}`,
    sts: '816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0',
    signature: 'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500',
  },
  {
    name: 'get-vanilla-query-order-key', method: 'GET', url: '/?Param1=value2&Param1=Value1', headers: base, signed: ['host', 'x-amz-date'],
    creq: `GET\n/\nParam1=Value1&Param1=value2\nhost:${HOST}\nx-amz-date:${SUITE_DATE}\n\nhost;x-amz-date\n${EMPTY}`,
    sts: '704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89',
    signature: 'eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1',
  },
  {
    name: 'get-vanilla-query-order-value', method: 'GET', url: '/?Param1=value2&Param1=value1', headers: base, signed: ['host', 'x-amz-date'],
    creq: `GET\n/\nParam1=value1&Param1=value2\nhost:${HOST}\nx-amz-date:${SUITE_DATE}\n\nhost;x-amz-date\n${EMPTY}`,
    sts: 'c968629d70850097a2d8781c9bf7edcb988b04cac14cca9be4acc3595f884606',
    signature: '5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694',
  },
  {
    name: 'get-vanilla-query-unreserved', method: 'GET', url: `/?${UNRESERVED}=${UNRESERVED}`, headers: base, signed: ['host', 'x-amz-date'],
    creq: `GET\n/\n${UNRESERVED}=${UNRESERVED}\nhost:${HOST}\nx-amz-date:${SUITE_DATE}\n\nhost;x-amz-date\n${EMPTY}`,
    sts: 'c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177',
    signature: '9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197',
  },
  {
    name: 'get-vanilla-utf8-query', method: 'GET', url: '/?%E1%88%B4=bar', headers: base, signed: ['host', 'x-amz-date'],
    creq: `GET\n/\n%E1%88%B4=bar\nhost:${HOST}\nx-amz-date:${SUITE_DATE}\n\nhost;x-amz-date\n${EMPTY}`,
    sts: 'eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073',
    signature: '2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04',
  },
  {
    name: 'get-utf8', method: 'GET', url: '/%E1%88%B4', headers: base, signed: ['host', 'x-amz-date'],
    creq: `GET\n/%E1%88%B4\n\nhost:${HOST}\nx-amz-date:${SUITE_DATE}\n\nhost;x-amz-date\n${EMPTY}`,
    sts: '2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102',
    signature: '8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85',
  },
  {
    name: 'get-unreserved', method: 'GET', url: `/${UNRESERVED}`, headers: base, signed: ['host', 'x-amz-date'],
    creq: `GET\n/${UNRESERVED}\n\nhost:${HOST}\nx-amz-date:${SUITE_DATE}\n\nhost;x-amz-date\n${EMPTY}`,
    sts: '6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9',
    signature: '07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f',
  },
  {
    name: 'get-space', method: 'GET', url: '/example%20space/', headers: base, signed: ['host', 'x-amz-date'],
    creq: `GET\n/example%20space/\n\nhost:${HOST}\nx-amz-date:${SUITE_DATE}\n\nhost;x-amz-date\n${EMPTY}`,
    sts: '63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86',
    signature: '652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741',
  },
  {
    name: 'get-header-value-trim', method: 'GET', url: '/',
    headers: { ...base, 'my-header1': ' value1', 'my-header2': ' "a   b   c"' },
    signed: ['host', 'my-header1', 'my-header2', 'x-amz-date'],
    creq: `GET\n/\n\nhost:${HOST}\nmy-header1:value1\nmy-header2:"a b c"\nx-amz-date:${SUITE_DATE}\n\nhost;my-header1;my-header2;x-amz-date\n${EMPTY}`,
    sts: 'a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7',
    signature: 'acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736',
  },
  {
    name: 'get-header-key-duplicate (multi-value header)', method: 'GET', url: '/',
    headers: { ...base, 'my-header1': ['value2', 'value2', 'value1'] },
    signed: ['host', 'my-header1', 'x-amz-date'],
    creq: `GET\n/\n\nhost:${HOST}\nmy-header1:value2,value2,value1\nx-amz-date:${SUITE_DATE}\n\nhost;my-header1;x-amz-date\n${EMPTY}`,
    sts: 'dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c',
    signature: 'c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea',
  },
  {
    name: 'get-header-value-order (multi-value header)', method: 'GET', url: '/',
    headers: { ...base, 'my-header1': ['value4', 'value1', 'value3', 'value2'] },
    signed: ['host', 'my-header1', 'x-amz-date'],
    creq: `GET\n/\n\nhost:${HOST}\nmy-header1:value4,value1,value3,value2\nx-amz-date:${SUITE_DATE}\n\nhost;my-header1;x-amz-date\n${EMPTY}`,
    sts: '31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86',
    signature: '08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01',
  },
  {
    name: 'post-vanilla', method: 'POST', url: '/', headers: base, signed: ['host', 'x-amz-date'],
    creq: `POST\n/\n\nhost:${HOST}\nx-amz-date:${SUITE_DATE}\n\nhost;x-amz-date\n${EMPTY}`,
    sts: '553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87',
    signature: '5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b',
  },
  {
    name: 'post-vanilla-query', method: 'POST', url: '/?Param1=value1', headers: base, signed: ['host', 'x-amz-date'],
    creq: `POST\n/\nParam1=value1\nhost:${HOST}\nx-amz-date:${SUITE_DATE}\n\nhost;x-amz-date\n${EMPTY}`,
    sts: '9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd',
    signature: '28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11',
  },
  {
    name: 'post-header-key-sort', method: 'POST', url: '/', headers: { ...base, 'my-header1': 'value1' },
    signed: ['host', 'my-header1', 'x-amz-date'],
    creq: `POST\n/\n\nhost:${HOST}\nmy-header1:value1\nx-amz-date:${SUITE_DATE}\n\nhost;my-header1;x-amz-date\n${EMPTY}`,
    sts: '9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65',
    signature: 'c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c',
  },
  {
    name: 'post-header-value-case', method: 'POST', url: '/', headers: { ...base, 'my-header1': 'VALUE1' },
    signed: ['host', 'my-header1', 'x-amz-date'],
    creq: `POST\n/\n\nhost:${HOST}\nmy-header1:VALUE1\nx-amz-date:${SUITE_DATE}\n\nhost;my-header1;x-amz-date\n${EMPTY}`,
    sts: 'd51ced243e649e3de6ef63afbbdcbca03131a21a7103a1583706a64618606a93',
    signature: 'cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d',
  },
  {
    // The suite's .creq files for the two form-urlencoded cases were later
    // regenerated with content-length signed while .sts/.authz were not; the
    // self-consistent vector (as in aws-sdk-js-v3's suite.fixture) signs
    // content-type;host;x-amz-date only.
    name: 'post-x-www-form-urlencoded-parameters', method: 'POST', url: '/',
    headers: { ...base, 'content-type': 'application/x-www-form-urlencoded; charset=utf8', 'content-length': '13' },
    signed: ['content-type', 'host', 'x-amz-date'],
    payload: sha256hex('Param1=value1'),
    creq: `POST\n/\n\ncontent-type:application/x-www-form-urlencoded; charset=utf8\nhost:${HOST}\nx-amz-date:${SUITE_DATE}\n\ncontent-type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e`,
    sts: '2e1cf7ed91881a30569e46552437e4156c823447bf1781b921b5d486c568dd1c',
    signature: '1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe',
  },
  {
    name: 'post-x-www-form-urlencoded', method: 'POST', url: '/',
    headers: { ...base, 'content-type': 'application/x-www-form-urlencoded', 'content-length': '13' },
    signed: ['content-type', 'host', 'x-amz-date'],
    payload: sha256hex('Param1=value1'),
    creq: `POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:${HOST}\nx-amz-date:${SUITE_DATE}\n\ncontent-type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e`,
    sts: '42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281',
    signature: 'ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a',
  },
  {
    name: 'post-sts-header-before', method: 'POST', url: '/',
    headers: { ...base, 'x-amz-security-token': 'AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==' },
    signed: ['host', 'x-amz-date', 'x-amz-security-token'],
    creq: `POST\n/\n\nhost:${HOST}\nx-amz-date:${SUITE_DATE}\nx-amz-security-token:AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==\n\nhost;x-amz-date;x-amz-security-token\n${EMPTY}`,
    sts: 'c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6',
    signature: '85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead',
  },
];

t.test('aws-sig-v4-test-suite vectors: canonical request, string to sign, signature', async (tt) => {
  const key = deriveSigningKey(SUITE_SECRET, '20150830', 'us-east-1', 'service');
  for (const v of vectors) {
    const creq = canonicalRequest({ method: v.method, url: v.url, headers: v.headers, signedHeaders: v.signed, payloadHash: v.payload ?? EMPTY });
    tt.equal(creq, v.creq, `${v.name}: canonical request`);
    const sts = stringToSign(SUITE_DATE, SUITE_SCOPE, creq);
    tt.equal(sts, `AWS4-HMAC-SHA256\n${SUITE_DATE}\n${SUITE_SCOPE}\n${v.sts}`, `${v.name}: string to sign`);
    tt.equal(computeSignature(key, sts), v.signature, `${v.name}: signature`);
  }
});

t.test('rawHeaders: repeated headers canonicalised from individual values', async (tt) => {
  const creq = canonicalRequest({
    method: 'GET', url: '/',
    headers: { ...base, 'my-header1': 'value2, value2, value1' }, // node's own joining
    rawHeaders: ['Host', HOST, 'My-Header1', 'value2', 'My-Header1', 'value2', 'My-Header1', ' value1 ', 'X-Amz-Date', SUITE_DATE],
    signedHeaders: ['host', 'my-header1', 'x-amz-date'], payloadHash: EMPTY,
  });
  tt.equal(sha256hex(creq), 'dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c');
});

t.test('S3 canonical URI: decoded and re-encoded per segment, never normalised', async (tt) => {
  tt.equal(canonicalUri('//example//'), '//example//');
  tt.equal(canonicalUri('/./'), '/./');
  tt.equal(canonicalUri('/example1/example2/../..'), '/example1/example2/../..');
  tt.equal(canonicalUri('/b/a%2Fb'), '/b/a%2Fb', 'encoded slash stays encoded');
  tt.equal(canonicalUri('/b/a+b(c)!*\''), '/b/a%2Bb%28c%29%21%2A%27');
  tt.equal(canonicalUri('/b/%7euser%20x'), '/b/~user%20x');
  tt.equal(canonicalUri('/b/caf%c3%a9'), '/b/caf%C3%A9');
  tt.equal(canonicalUri(''), '/');
  tt.equal(uriEncode('a b/c~', true), 'a%20b/c~');
  tt.equal(uriEncode('a b/c~', false), 'a%20b%2Fc~');
  tt.equal(uriEncode('ሴ', false), '%E1%88%B4');
  tt.equal(uriEncode('\ud800', false), '%EF%BF%BD', 'lone surrogate does not throw');
  const creq = canonicalRequest({ method: 'get', url: '/b?list-type=2&prefix=a+b&empty&x=%2F', headers: { host: 'h' }, signedHeaders: ['host'], payloadHash: 'UNSIGNED-PAYLOAD' });
  tt.equal(creq.split('\n')[2], 'empty=&list-type=2&prefix=a%2Bb&x=%2F', "'+' is not a space; empty values kept");
});

// ---------------------------------------------------------------------------
// The S3 documentation examples (AKIAIOSFODNN7EXAMPLE, 20130524).

const AK = 'AKIAIOSFODNN7EXAMPLE';
const SK = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const alice: Credential = { accessKey: AK, secretKey: SK, role: 'readwrite' };
const lookup: CredentialLookup = (ak) => (ak === AK ? alice : undefined);
const DOC_NOW = new Date('2013-05-24T00:00:00Z');

function getObjectExample(overrides: IncomingHttpHeaders = {}, signature = 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41'): SignedRequest {
  return {
    method: 'GET',
    url: '/test.txt',
    headers: {
      host: 'examplebucket.s3.amazonaws.com',
      range: 'bytes=0-9',
      'x-amz-content-sha256': EMPTY,
      'x-amz-date': '20130524T000000Z',
      authorization: `AWS4-HMAC-SHA256 Credential=${AK}/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=${signature}`,
      ...overrides,
    },
  };
}

t.test('S3 doc example: GET object with Authorization header', async (tt) => {
  const req = getObjectExample();
  const creq = canonicalRequest({ method: 'GET', url: req.url, headers: req.headers, signedHeaders: ['host', 'range', 'x-amz-content-sha256', 'x-amz-date'], payloadHash: EMPTY });
  tt.equal(creq, `GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\nx-amz-content-sha256:${EMPTY}\nx-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n${EMPTY}`);
  const sts = stringToSign('20130524T000000Z', '20130524/us-east-1/s3/aws4_request', creq);
  tt.equal(sts, 'AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972');
  tt.equal(computeSignature(deriveSigningKey(SK, '20130524', 'us-east-1', 's3'), sts), 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41');

  const ctx = authenticate(req, lookup, { now: DOC_NOW });
  tt.equal(ctx.credential, alice);
  tt.same(ctx.payload, { mode: 'signed', sha256: EMPTY });
  tt.equal(ctx.signing, undefined);

  // spaces after the commas are fine too
  const spaced = getObjectExample({
    authorization: `AWS4-HMAC-SHA256 Credential=${AK}/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41`,
  });
  tt.equal(authenticate(spaced, lookup, { now: DOC_NOW }).credential.accessKey, AK);
});

const PRESIGN_URL = `/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=${AK}%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404`;

t.test('S3 doc example: presigned URL', async (tt) => {
  const headers = { host: 'examplebucket.s3.amazonaws.com' };
  const creq = canonicalRequest({ method: 'GET', url: PRESIGN_URL, headers, signedHeaders: ['host'], payloadHash: 'UNSIGNED-PAYLOAD', excludeQueryParam: 'X-Amz-Signature' });
  tt.equal(creq, `GET\n/test.txt\nX-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=${AK}%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\nhost:examplebucket.s3.amazonaws.com\n\nhost\nUNSIGNED-PAYLOAD`);
  tt.equal(sha256hex(creq), '3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04');

  const ctx = authenticate({ method: 'GET', url: PRESIGN_URL, headers }, lookup, { now: new Date('2013-05-24T12:00:00Z') });
  tt.equal(ctx.credential, alice);
  tt.same(ctx.payload, { mode: 'unsigned' });

  // still valid at the last second, expired one second later
  authenticate({ method: 'GET', url: PRESIGN_URL, headers }, lookup, { now: new Date('2013-05-25T00:00:00Z') });
  expectS3Error(tt, () => authenticate({ method: 'GET', url: PRESIGN_URL, headers }, lookup, { now: new Date('2013-05-25T00:00:01Z') }), 'AccessDenied', /Request has expired/);
  expectS3Error(tt, () => authenticate({ method: 'GET', url: PRESIGN_URL, headers }, lookup, { now: new Date('2013-05-23T23:00:00Z') }), 'AccessDenied', /not valid yet/);
  // a presigned URL is not bound to the server clock's skew window
  authenticate({ method: 'GET', url: PRESIGN_URL, headers }, lookup, { now: new Date('2013-05-24T20:00:00Z') });
  // tampering with any signed parameter breaks the signature
  expectS3Error(tt, () => authenticate({ method: 'GET', url: PRESIGN_URL.replace('Expires=86400', 'Expires=86401'), headers }, lookup, { now: DOC_NOW }), 'SignatureDoesNotMatch');
  expectS3Error(tt, () => authenticate({ method: 'PUT', url: PRESIGN_URL, headers }, lookup, { now: DOC_NOW }), 'SignatureDoesNotMatch');
  expectS3Error(tt, () => authenticate({ method: 'GET', url: PRESIGN_URL + '&versionId=1', headers }, lookup, { now: DOC_NOW }), 'SignatureDoesNotMatch');
});

t.test('S3 doc example: chunked upload seed signature', async (tt) => {
  const req: SignedRequest = {
    method: 'PUT',
    url: '/examplebucket/chunkObject.txt',
    headers: {
      host: 's3.amazonaws.com',
      'x-amz-date': '20130524T000000Z',
      'x-amz-storage-class': 'REDUCED_REDUNDANCY',
      authorization: `AWS4-HMAC-SHA256 Credential=${AK}/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9`,
      'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
      'content-encoding': 'aws-chunked',
      'x-amz-decoded-content-length': '66560',
      'content-length': '66824',
    },
  };
  const ctx = authenticate(req, lookup, { now: DOC_NOW });
  tt.same(ctx.payload, { mode: 'streaming-signed', trailer: false });
  tt.ok(ctx.signing);
  tt.equal(ctx.signing?.seedSignature, '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9');
  tt.equal(ctx.signing?.amzDate, '20130524T000000Z');
  tt.equal(ctx.signing?.scope, '20130524/us-east-1/s3/aws4_request');
  tt.same(ctx.signing?.key, deriveSigningKey(SK, '20130524', 'us-east-1', 's3'));
});

t.test('rejections', async (tt) => {
  const opts = { now: DOC_NOW };
  const good = 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41';
  const forged = (good[0] === 'f' ? 'e' : 'f') + good.slice(1);
  expectS3Error(tt, () => authenticate(getObjectExample({}, forged), lookup, opts), 'SignatureDoesNotMatch');
  expectS3Error(tt, () => authenticate(getObjectExample({ range: 'bytes=0-10' }), lookup, opts), 'SignatureDoesNotMatch', undefined);
  expectS3Error(tt, () => authenticate({ ...getObjectExample(), url: '/test.txt?acl' }, lookup, opts), 'SignatureDoesNotMatch');
  expectS3Error(tt, () => authenticate(getObjectExample(), () => undefined, opts), 'InvalidAccessKeyId');
  expectS3Error(tt, () => authenticate({ method: 'GET', url: '/test.txt', headers: { host: 'x' } }, lookup, opts), 'AccessDenied');
  // clock skew: 15 minutes tolerated by default, beyond that rejected
  authenticate(getObjectExample(), lookup, { now: new Date(DOC_NOW.getTime() + 15 * 60_000) });
  expectS3Error(tt, () => authenticate(getObjectExample(), lookup, { now: new Date(DOC_NOW.getTime() + 16 * 60_000) }), 'RequestTimeTooSkewed');
  expectS3Error(tt, () => authenticate(getObjectExample(), lookup, { now: new Date(DOC_NOW.getTime() - 16 * 60_000) }), 'RequestTimeTooSkewed');
  expectS3Error(tt, () => authenticate(getObjectExample(), lookup, { now: new Date(DOC_NOW.getTime() + 2000), maxSkewMs: 1000 }), 'RequestTimeTooSkewed');
  // date problems
  expectS3Error(tt, () => authenticate(getObjectExample({ 'x-amz-date': undefined }), lookup, opts), 'AccessDenied');
  expectS3Error(tt, () => authenticate(getObjectExample({ 'x-amz-date': '2013-05-24T00:00:00Z' }), lookup, opts), 'AccessDenied');
  expectS3Error(tt, () => authenticate(getObjectExample({ 'x-amz-date': '20131324T000000Z' }), lookup, opts), 'AccessDenied');
  expectS3Error(tt, () => authenticate(getObjectExample({ 'x-amz-date': '20130525T000000Z' }), lookup, { now: new Date('2013-05-25T00:00:00Z') }), 'AuthorizationHeaderMalformed');
  // payload hash header
  expectS3Error(tt, () => authenticate(getObjectExample({ 'x-amz-content-sha256': undefined }), lookup, opts), 'InvalidRequest');
  expectS3Error(tt, () => authenticate(getObjectExample({ 'x-amz-content-sha256': 'nope' }), lookup, opts), 'InvalidArgument');
  expectS3Error(tt, () => authenticate(getObjectExample({ 'x-amz-content-sha256': EMPTY.slice(1) }), lookup, opts), 'InvalidArgument');
  // malformed Authorization headers
  const malformed = [
    'AWS4-HMAC-SHA256',
    'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request',
    `AWS4-HMAC-SHA256 Credential=${AK}/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=xyz`,
    `AWS4-HMAC-SHA256 Credential=${AK}/20130524/us-east-1/s3,SignedHeaders=host,Signature=${good}`,
    `AWS4-HMAC-SHA256 Credential=${AK}/20130524/us-east-1/ec2/aws4_request,SignedHeaders=host,Signature=${good}`,
    `AWS4-HMAC-SHA256 Credential=${AK}/20130524/us-east-1/s3/aws5_request,SignedHeaders=host,Signature=${good}`,
    `AWS4-HMAC-SHA256 Credential=${AK}/2013052/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=${good}`,
    `AWS4-HMAC-SHA256 Credential=${AK}/20130524/us-east-1/s3/aws4_request,SignedHeaders=range;x-amz-date,Signature=${good}`,
    `AWS4-HMAC-SHA256 Credential=${AK}/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;;range,Signature=${good}`,
    `AWS4-HMAC-SHA256 Credential=${AK}/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=${good},Signature=${good}`,
    `AWS4-HMAC-SHA256 Credential=${AK}/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=${good},Extra=1`,
    `AWS4-HMAC-SHA1 Credential=${AK}/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=${good}`,
  ];
  for (const authorization of malformed) {
    expectS3Error(tt, () => authenticate(getObjectExample({ authorization }), lookup, opts), 'AuthorizationHeaderMalformed');
  }
  expectS3Error(tt, () => authenticate(getObjectExample({ authorization: `AWS ${AK}:frJIUN8DYpKDtOLCwo//yllqDzg=` }), lookup, opts), 'InvalidRequest');
  // region in the scope is taken as given: other regions sign differently but are accepted
  const otherRegion = getObjectExample({
    authorization: `AWS4-HMAC-SHA256 Credential=${AK}/20130524/eu-west-3/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=${good}`,
  });
  expectS3Error(tt, () => authenticate(otherRegion, lookup, opts), 'SignatureDoesNotMatch');
  // unsigned x-amz-* headers are refused
  expectS3Error(tt, () => authenticate(getObjectExample({ 'x-amz-meta-evil': '1' }), lookup, opts), 'AccessDenied', /not signed/);
  // a signed header missing from the request
  const missing = getObjectExample();
  delete missing.headers.range;
  expectS3Error(tt, () => authenticate(missing, lookup, opts), 'SignatureDoesNotMatch');
  // both mechanisms at once
  expectS3Error(tt, () => authenticate({ ...getObjectExample(), url: PRESIGN_URL }, lookup, opts), 'InvalidArgument');
  // malformed percent-encoding never crashes
  for (const url of ['/test%zz.txt', '/test.txt?prefix=%E1%88', '/%', '/a?%=1', '/%ED%A0%80']) {
    expectS3Error(tt, () => authenticate({ ...getObjectExample(), url }, lookup, opts), 'InvalidArgument');
  }
  expectS3Error(tt, () => authenticate({ method: 'GET', url: PRESIGN_URL.replace('X-Amz-Date=2013', 'X-Amz-Date=%zz2013'), headers: { host: 'examplebucket.s3.amazonaws.com' } }, lookup, opts), 'InvalidArgument');
});

t.test('presigned query rejections', async (tt) => {
  const headers = { host: 'examplebucket.s3.amazonaws.com' };
  const opts = { now: DOC_NOW };
  const bad = (url: string) => expectS3Error(tt, () => authenticate({ method: 'GET', url, headers }, lookup, opts), 'AuthorizationQueryParametersError');
  bad(PRESIGN_URL.replace('X-Amz-Expires=86400', 'X-Amz-Expires=604801'));
  bad(PRESIGN_URL.replace('X-Amz-Expires=86400', 'X-Amz-Expires=0'));
  bad(PRESIGN_URL.replace('X-Amz-Expires=86400', 'X-Amz-Expires=-5'));
  bad(PRESIGN_URL.replace('X-Amz-Expires=86400', 'X-Amz-Expires=abc'));
  bad(PRESIGN_URL.replace('&X-Amz-Expires=86400', ''));
  bad(PRESIGN_URL.replace('&X-Amz-SignedHeaders=host', ''));
  bad(PRESIGN_URL.replace('X-Amz-Algorithm=AWS4-HMAC-SHA256', 'X-Amz-Algorithm=AWS4-HMAC-SHA1'));
  bad(PRESIGN_URL.replace('X-Amz-Date=20130524T000000Z', 'X-Amz-Date=20130524'));
  bad(PRESIGN_URL.replace('X-Amz-Date=20130524T000000Z', 'X-Amz-Date=20130525T000000Z'));
  bad(PRESIGN_URL.replace('%2Fs3%2F', '%2Fsqs%2F'));
  bad(PRESIGN_URL.replace(/X-Amz-Signature=[0-9a-f]+/, 'X-Amz-Signature=abc'));
  bad(PRESIGN_URL + '&X-Amz-Date=20130524T000000Z');
  expectS3Error(tt, () => authenticate({ method: 'GET', url: PRESIGN_URL.replace(AK, 'AKIDUNKNOWN'), headers }, lookup, opts), 'InvalidAccessKeyId');
  expectS3Error(tt, () => authenticate({ method: 'GET', url: PRESIGN_URL, headers: { ...headers, 'x-amz-acl': 'public-read' } }, lookup, opts), 'AccessDenied', /not signed/);
});

// ---------------------------------------------------------------------------
// Interoperability with the AWS SDK's own signer (@smithy/signature-v4).

const signer = new SignatureV4({
  service: 's3', region: 'eu-west-3', sha256: Sha256, uriEscapePath: false, applyChecksum: false,
  credentials: { accessKeyId: AK, secretAccessKey: SK },
});
const encodeKey = (key: string) => key.split('/').map((s) => uriEncode(s, false)).join('/');
const wireQuery = (q: Record<string, string>) => Object.entries(q).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');

t.test('requests signed by @smithy/signature-v4 authenticate', async (tt) => {
  const signingDate = new Date('2024-02-29T10:20:30Z');
  const keys = ['plain.txt', 'a b/c+d/ü/(x)*!\'', '//double//slash/', './dot/../x', 'emoji-😀/%41', 'tab\there'];
  const query = { prefix: 'a b+c/d', 'list-type': '2', 'empty': '', 'x-id': 'PutObject', 'ünï': 'çødé' };
  for (const key of keys) {
    const path = `/bucket/${encodeKey(key)}`;
    const request = {
      method: 'PUT', protocol: 'https:', hostname: 'gw.example.net', port: 9000, path, query,
      headers: { host: 'gw.example.net:9000', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'x-amz-meta-note': '  spaced   out  ', 'content-type': 'text/plain' },
    };
    const signed = await signer.sign(request, { signingDate });
    const headers: IncomingHttpHeaders = {};
    for (const [k, v] of Object.entries(signed.headers)) headers[k.toLowerCase()] = String(v).trim();
    const ctx = authenticate({ method: 'PUT', url: `${path}?${wireQuery(query)}`, headers }, lookup, { now: signingDate });
    tt.equal(ctx.credential.accessKey, AK, `header form: ${JSON.stringify(key)}`);
    tt.same(ctx.payload, { mode: 'unsigned' });

    // as @aws-sdk/s3-request-presigner does: the payload hash is UNSIGNED-PAYLOAD
    const presigned = await signer.presign({ ...request, headers: { host: 'gw.example.net:9000', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } }, { signingDate, expiresIn: 3600 });
    const url = `${path}?${wireQuery(presigned.query as Record<string, string>)}`;
    const pctx = authenticate({ method: 'PUT', url, headers: { host: 'gw.example.net:9000' } }, lookup, { now: new Date(signingDate.getTime() + 3599_000) });
    tt.equal(pctx.credential.accessKey, AK, `presigned: ${JSON.stringify(key)}`);
    expectS3Error(tt, () => authenticate({ method: 'PUT', url, headers: { host: 'gw.example.net:9000' } }, lookup, { now: new Date(signingDate.getTime() + 3601_000) }), 'AccessDenied', /expired/);
  }
});

t.test('Date header fallback and signing-key cache', async (tt) => {
  const when = new Date('2024-05-01T08:00:00Z');
  const key = deriveSigningKey(SK, '20240501', 'us-east-1', 's3');
  tt.equal(deriveSigningKey(SK, '20240501', 'us-east-1', 's3'), key, 'cached');
  const headers: IncomingHttpHeaders = { host: 'h', date: when.toUTCString(), 'x-amz-content-sha256': EMPTY };
  const creq = canonicalRequest({ method: 'GET', url: '/b/k', headers, signedHeaders: ['date', 'host', 'x-amz-content-sha256'], payloadHash: EMPTY });
  const sig = computeSignature(key, stringToSign('20240501T080000Z', '20240501/us-east-1/s3/aws4_request', creq));
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${AK}/20240501/us-east-1/s3/aws4_request, SignedHeaders=date;host;x-amz-content-sha256, Signature=${sig}`;
  tt.equal(authenticate({ method: 'GET', url: '/b/k', headers }, lookup, { now: when }).credential, alice);
  // many distinct dates do not grow the cache without bound (smoke: still works)
  for (let d = 1; d <= 400; d++) deriveSigningKey(SK, `2020${String(1 + (d % 12)).padStart(2, '0')}${String(1 + (d % 28)).padStart(2, '0')}`, `r${d}`, 's3');
  tt.same(deriveSigningKey(SK, '20240501', 'us-east-1', 's3'), key);
});

t.test('presigned URL with X-Amz-Content-Sha256 and extra signed headers', async (tt) => {
  const when = new Date('2024-06-01T12:00:00Z');
  const bodyHash = sha256hex('hello');
  const presign = (payload: string | undefined) => {
    const params: Record<string, string> = {
      'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
      'X-Amz-Credential': `${AK}/20240601/auto/s3/aws4_request`,
      'X-Amz-Date': '20240601T120000Z',
      'X-Amz-Expires': '300',
      'X-Amz-SignedHeaders': 'content-type;host',
      'x-id': 'PutObject',
    };
    if (payload !== undefined) params['X-Amz-Content-Sha256'] = payload;
    const unsignedUrl = `/bkt/some%20key?${Object.entries(params).map(([k, v]) => `${uriEncode(k, false)}=${uriEncode(v, false)}`).join('&')}`;
    const headers = { host: 'localhost:9000', 'content-type': 'text/plain' };
    const creq = canonicalRequest({ method: 'PUT', url: unsignedUrl, headers, signedHeaders: ['content-type', 'host'], payloadHash: payload ?? 'UNSIGNED-PAYLOAD' });
    const sig = computeSignature(deriveSigningKey(SK, '20240601', 'auto', 's3'), stringToSign('20240601T120000Z', '20240601/auto/s3/aws4_request', creq));
    return { url: `${unsignedUrl}&X-Amz-Signature=${sig}`, headers };
  };
  const signedPayload = presign(bodyHash);
  tt.same(authenticate({ method: 'PUT', ...signedPayload }, lookup, { now: when }).payload, { mode: 'signed', sha256: bodyHash });
  const unsignedPayload = presign('UNSIGNED-PAYLOAD');
  tt.same(authenticate({ method: 'PUT', ...unsignedPayload }, lookup, { now: when }).payload, { mode: 'unsigned' });
  const none = presign(undefined);
  tt.same(authenticate({ method: 'PUT', ...none }, lookup, { now: when }).payload, { mode: 'unsigned' });
  // a changed signed header breaks it
  expectS3Error(tt, () => authenticate({ method: 'PUT', url: none.url, headers: { ...none.headers, 'content-type': 'text/html' } }, lookup, { now: when }), 'SignatureDoesNotMatch');
  // streaming payload modes make no sense for presigned URLs
  const streaming = presign('STREAMING-AWS4-HMAC-SHA256-PAYLOAD');
  expectS3Error(tt, () => authenticate({ method: 'PUT', ...streaming }, lookup, { now: when }), 'InvalidArgument');
});
