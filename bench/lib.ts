// Helpers for the S3 benchmark (bench/s3.ts): a gateway launcher, a cheap
// SigV4 signer checked against @smithy/signature-v4, a thin undici client
// that counts failures, a closed-loop concurrent runner with latency stats,
// and the two ceilings (a bare Node http file server, three-copy fsynced
// writes straight to disk).
//
// Also runnable on its own as the bare server child:
//   node dist/bench/lib.js bare-server FILE
// prints {"port":N} on stdout and serves FILE on every GET.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import { appendFileSync, createReadStream } from 'node:fs';
import { open, stat, unlink } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { Pool } from 'undici';

export const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
export const GATEWAY_MAIN = join(ROOT, 'dist/gateway/main.js');
const SELF = fileURLToPath(import.meta.url);

export const ACCESS_KEY = 'BENCHACCESSKEY';
export const SECRET_KEY = 'bench-secret-key-0123456789';
export const REGION = 'us-east-1';
export const KiB = 1024;
export const MiB = 1024 * 1024;

export function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

// ---------------------------------------------------------------------------
// Child processes

export interface Child {
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** SIGTERM by pid, wait up to `graceMs`, then SIGKILL. */
export function stopper(proc: ChildProcess, graceMs = 10_000): () => Promise<void> {
  const exited = new Promise<void>((res) => {
    if (proc.exitCode !== null || proc.signalCode !== null) res();
    else proc.once('exit', () => res());
  });
  return async () => {
    if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) {
      try {
        process.kill(proc.pid, 'SIGTERM');
      } catch {}
      const timer = setTimeout(() => {
        if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) {
          try {
            process.kill(proc.pid, 'SIGKILL');
          } catch {}
        }
      }, graceMs);
      await exited;
      clearTimeout(timer);
    }
    await exited;
  };
}

/** Spawn, wait for the first stdout JSON line `ready` accepts, keep draining the rest. */
export async function spawnReady<T>(
  what: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: (msg: Record<string, unknown>) => T | undefined,
  timeoutMs = 30_000,
): Promise<{ proc: ChildProcess; value: T }> {
  const proc = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const stderr: string[] = [];
  proc.stderr!.on('data', (d: Buffer) => {
    stderr.push(d.toString());
    if (stderr.length > 200) stderr.shift();
    process.stderr.write(`[${what}] ${d.toString()}`);
  });
  const value = await new Promise<T>((res, rej) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      rej(new Error(`${what} did not start in ${timeoutMs} ms: ${stderr.join('')}`));
    }, timeoutMs);
    let done = false;
    const logTo = process.env.VALENTINE_BENCH_GATEWAY_LOG;
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      if (logTo) appendFileSync(logTo, `${line}\n`);
      if (done) return;
      try {
        const v = ready(JSON.parse(line) as Record<string, unknown>);
        if (v !== undefined) {
          done = true;
          clearTimeout(timer);
          res(v);
        }
      } catch {}
    });
    proc.once('exit', (code, sig) => {
      clearTimeout(timer);
      if (!done) rej(new Error(`${what} exited (${code ?? sig}) before it was ready: ${stderr.join('')}`));
    });
  });
  return { proc, value };
}

export interface GatewayProc extends Child {
  s3Url: string;
  adminUrl: string;
}

/**
 * Start the built gateway. Extra node flags for the gateway only (e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof`) come from VALENTINE_BENCH_GATEWAY_NODE_ARGS;
 * VALENTINE_BENCH_GATEWAY_LOG names a file that gets its log (stdout) lines.
 */
export async function startGateway(dataDir: string, extraArgs: string[] = []): Promise<GatewayProc> {
  const nodeArgs = (process.env.VALENTINE_BENCH_GATEWAY_NODE_ARGS ?? '').split(/\s+/).filter((s) => s !== '');
  const { proc, value } = await spawnReady(
    'gateway',
    [...nodeArgs, GATEWAY_MAIN, 'serve', '--data', dataDir, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', ...extraArgs],
    { ...process.env, VALENTINE_ACCESS_KEY: ACCESS_KEY, VALENTINE_SECRET_KEY: SECRET_KEY },
    (msg) => (msg.msg === 'valentine ready' && typeof msg.s3 === 'string' && typeof msg.admin === 'string' ? { s3: msg.s3, admin: msg.admin } : undefined),
  );
  return { proc, s3Url: value.s3, adminUrl: value.admin, stop: stopper(proc) };
}

export interface BareServerProc extends Child {
  url: string;
}

/** The GET ceiling: a plain node:http server in a child process streaming `file`. */
export async function startBareServer(file: string): Promise<BareServerProc> {
  const { proc, value } = await spawnReady('bare', [SELF, 'bare-server', file], process.env, (msg) =>
    typeof msg.port === 'number' ? msg.port : undefined,
  );
  return { proc, url: `http://127.0.0.1:${value}`, stop: stopper(proc) };
}

async function runBareServer(file: string): Promise<void> {
  const size = (await stat(file)).size;
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-length': String(size), 'content-type': 'application/octet-stream' });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    // `?hwm=N` sets the read chunk size (default: createReadStream's 64 KiB).
    const hwm = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('hwm') ?? 0);
    createReadStream(file, hwm > 0 ? { highWaterMark: hwm } : {}).pipe(res);
  });
  server.keepAliveTimeout = 120_000;
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

// ---------------------------------------------------------------------------
// SigV4, cheap: the signing key is derived once per day, the date string once
// per second; only two hashes and one HMAC per request (node:crypto).

const hex = (b: Buffer | Uint8Array) => Buffer.from(b).toString('hex');

function rfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export interface SignedHeaders {
  'x-amz-date': string;
  'x-amz-content-sha256': string;
  authorization: string;
}

export class Signer {
  private day = '';
  private key: Buffer = Buffer.alloc(0);
  private second = -1;
  private amzDate = '';

  constructor(
    private readonly accessKey: string,
    private readonly secretKey: string,
    private readonly region = REGION,
    private readonly service = 's3',
  ) {}

  /** Canonical query string for a query object (sorted, RFC 3986 encoded). */
  static canonicalQuery(query: Record<string, string>): string {
    return Object.keys(query)
      .sort()
      .map((k) => `${rfc3986(k)}=${rfc3986(query[k]!)}`)
      .join('&');
  }

  /**
   * Headers to send for `method host path?query` with UNSIGNED-PAYLOAD.
   * `path` must already be URI-encoded (S3 does not double-encode).
   */
  sign(method: string, host: string, path: string, canonicalQuery = '', now = Date.now()): SignedHeaders {
    const sec = Math.floor(now / 1000);
    if (sec !== this.second) {
      this.second = sec;
      this.amzDate = new Date(sec * 1000).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
      const day = this.amzDate.slice(0, 8);
      if (day !== this.day) {
        this.day = day;
        const h = (k: string | Buffer, d: string) => createHmac('sha256', k).update(d).digest();
        this.key = h(h(h(h(`AWS4${this.secretKey}`, day), this.region), this.service), 'aws4_request');
      }
    }
    const payload = 'UNSIGNED-PAYLOAD';
    const canonical =
      `${method}\n${path}\n${canonicalQuery}\n` +
      `host:${host}\nx-amz-content-sha256:${payload}\nx-amz-date:${this.amzDate}\n\n` +
      `host;x-amz-content-sha256;x-amz-date\n${payload}`;
    const scope = `${this.day}/${this.region}/${this.service}/aws4_request`;
    const sts = `AWS4-HMAC-SHA256\n${this.amzDate}\n${scope}\n${createHash('sha256').update(canonical).digest('hex')}`;
    const sig = createHmac('sha256', this.key).update(sts).digest('hex');
    return {
      'x-amz-date': this.amzDate,
      'x-amz-content-sha256': payload,
      authorization: `AWS4-HMAC-SHA256 Credential=${this.accessKey}/${scope}, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=${sig}`,
    };
  }

  /** Check this signer against @smithy/signature-v4 (with @aws-crypto/sha256-js) on a few requests. */
  async selfCheck(): Promise<void> {
    const ref = new SignatureV4({
      service: this.service,
      region: this.region,
      credentials: { accessKeyId: this.accessKey, secretAccessKey: this.secretKey },
      sha256: Sha256,
      uriEscapePath: false,
      applyChecksum: false,
    });
    const when = new Date('2025-03-04T05:06:07Z');
    const cases: { method: string; path: string; query: Record<string, string> }[] = [
      { method: 'PUT', path: '/bench-large/obj-0001', query: {} },
      { method: 'GET', path: '/bench-small', query: { 'list-type': '2', 'max-keys': '100', 'start-after': 'small/c8/000123' } },
      { method: 'HEAD', path: '/b/k', query: {} },
    ];
    for (const c of cases) {
      const mine = new Signer(this.accessKey, this.secretKey, this.region, this.service).sign(
        c.method,
        '127.0.0.1:9000',
        c.path,
        Signer.canonicalQuery(c.query),
        when.getTime(),
      );
      const theirs = await ref.sign(
        {
          method: c.method,
          protocol: 'http:',
          hostname: '127.0.0.1',
          port: 9000,
          path: c.path,
          query: c.query,
          headers: { host: '127.0.0.1:9000', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
        },
        { signingDate: when },
      );
      if (theirs.headers.authorization !== mine.authorization) {
        throw new Error(`SigV4 self-check failed for ${c.method} ${c.path}:\n mine   ${mine.authorization}\n smithy ${theirs.headers.authorization}`);
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Client

export class RequestError extends Error {}

/** Resolve with the byte count of a response body, without copying it. */
function countBody(body: NodeJS.ReadableStream): Promise<number> {
  return new Promise((res, rej) => {
    let n = 0;
    body.on('data', (c: Buffer) => {
      n += c.length;
    });
    body.once('end', () => res(n));
    body.once('error', rej);
  });
}

/** Resolve with a response body compared to `expected` chunk by chunk (no concatenation). */
function compareBody(body: NodeJS.ReadableStream, expected: Buffer): Promise<boolean> {
  return new Promise((res, rej) => {
    let off = 0;
    let same = true;
    body.on('data', (c: Buffer) => {
      if (same && (off + c.length > expected.length || !c.equals(expected.subarray(off, off + c.length)))) same = false;
      off += c.length;
    });
    body.once('end', () => res(same && off === expected.length));
    body.once('error', rej);
  });
}

export interface Counters {
  requests: number;
  errors: number;
  firstError?: string;
}

/** A thin S3 client: undici Pool, cheap SigV4, non-2xx responses counted (and recorded). */
export class S3Bench {
  readonly pool: Pool;
  readonly host: string;
  readonly counters: Counters = { requests: 0, errors: 0 };

  constructor(
    origin: string,
    private readonly signer: Signer,
    connections = 64,
  ) {
    this.pool = new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 120_000, keepAliveMaxTimeout: 120_000 });
    this.host = new URL(origin).host;
  }

  private fail(msg: string): void {
    this.counters.errors++;
    this.counters.firstError ??= msg;
  }

  private async req(
    method: 'GET' | 'PUT' | 'HEAD',
    path: string,
    query: Record<string, string> | undefined,
    body: Buffer | undefined,
  ) {
    const cq = query ? Signer.canonicalQuery(query) : '';
    const headers: Record<string, string> = { ...this.signer.sign(method, this.host, path, cq) };
    if (body) headers['content-length'] = String(body.length);
    this.counters.requests++;
    const res = await this.pool.request({ method, path: cq ? `${path}?${cq}` : path, headers, body: body ?? null });
    if (res.statusCode < 200 || res.statusCode >= 300) {
      const text = await res.body.text().catch(() => '');
      this.fail(`${method} ${path} -> ${res.statusCode} ${text.slice(0, 300)}`);
      return undefined;
    }
    return res;
  }

  async createBucket(bucket: string): Promise<void> {
    const res = await this.req('PUT', `/${bucket}`, undefined, undefined);
    if (res) await res.body.dump();
  }

  async put(path: string, body: Buffer): Promise<void> {
    const res = await this.req('PUT', path, undefined, body);
    if (res) await res.body.dump();
  }

  /** GET, count the body's bytes; a length other than `expect` counts as an error. */
  async get(path: string, expect: number): Promise<void> {
    const res = await this.req('GET', path, undefined, undefined);
    if (!res) return;
    const n = await countBody(res.body);
    if (n !== expect) this.fail(`GET ${path}: ${n} bytes, expected ${expect}`);
  }

  async head(path: string, expect: number): Promise<void> {
    const res = await this.req('HEAD', path, undefined, undefined);
    if (!res) return;
    await res.body.dump();
    if (Number(res.headers['content-length']) !== expect) this.fail(`HEAD ${path}: content-length ${String(res.headers['content-length'])}, expected ${expect}`);
  }

  /** ListObjectsV2; returns body length. */
  async list(bucket: string, query: Record<string, string>): Promise<number> {
    const res = await this.req('GET', `/${bucket}`, { 'list-type': '2', ...query }, undefined);
    if (!res) return 0;
    return countBody(res.body);
  }

  /** Untimed check: GET returns exactly `expected`. */
  async verifyGet(path: string, expected: Buffer): Promise<void> {
    const res = await this.req('GET', path, undefined, undefined);
    if (!res) throw new RequestError(`verify GET ${path} failed: ${this.counters.firstError}`);
    if (!(await compareBody(res.body, expected))) throw new RequestError(`verify GET ${path}: body differs from what was PUT`);
  }

  /** Untimed check: a ListObjectsV2 page holds `keys` keys. */
  async verifyList(bucket: string, query: Record<string, string>, keys: number): Promise<void> {
    const res = await this.req('GET', `/${bucket}`, { 'list-type': '2', ...query }, undefined);
    if (!res) throw new RequestError(`verify LIST failed: ${this.counters.firstError}`);
    const text = await res.body.text();
    const n = text.split('<Key>').length - 1;
    if (n !== keys) throw new RequestError(`verify LIST: ${n} keys, expected ${keys}: ${text.slice(0, 300)}`);
  }

  /** Throw if any request of this client failed so far. */
  assertNoErrors(what: string): void {
    if (this.counters.errors > 0) {
      throw new RequestError(`${what}: ${this.counters.errors} failed request(s) of ${this.counters.requests}; first: ${this.counters.firstError}`);
    }
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

// ---------------------------------------------------------------------------
// Runner and statistics

export interface RunResult {
  latencies: number[];
  wallMs: number;
}

/**
 * Closed loop: `concurrency` workers take operation indexes 0, 1, 2… until
 * `maxOps` were started or `maxMs` elapsed.
 */
export async function runConcurrent(
  concurrency: number,
  maxOps: number,
  maxMs: number,
  op: (i: number) => Promise<void>,
): Promise<RunResult> {
  const latencies: number[] = [];
  let next = 0;
  const start = performance.now();
  const deadline = start + maxMs;
  const worker = async () => {
    for (;;) {
      if (next >= maxOps || performance.now() >= deadline) return;
      const i = next++;
      const t0 = performance.now();
      await op(i);
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { latencies, wallMs: performance.now() - start };
}

export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export const round = (x: number, digits = 3) => (Number.isFinite(x) ? Math.round(x * 10 ** digits) / 10 ** digits : null);

export interface Stats {
  samples: number;
  median_ms: number | null;
  p99_ms: number | null;
  mean_ms: number | null;
  min_ms: number | null;
  max_ms: number | null;
  wall_ms: number | null;
}

export function stats(r: RunResult): Stats {
  const s = [...r.latencies].sort((a, b) => a - b);
  return {
    samples: s.length,
    median_ms: round(percentile(s, 0.5)),
    p99_ms: round(percentile(s, 0.99)),
    mean_ms: round(s.reduce((a, b) => a + b, 0) / s.length),
    min_ms: round(s[0] ?? NaN),
    max_ms: round(s[s.length - 1] ?? NaN),
    wall_ms: round(r.wallMs, 1),
  };
}

// ---------------------------------------------------------------------------
// PUT ceiling: the same bytes written three times, each file fsynced.

export async function writeThreeCopies(dir: string, name: string, data: Buffer): Promise<void> {
  await Promise.all(
    ['hot', 'a', 'b'].map(async (copy) => {
      const fh = await open(join(dir, `${name}.${copy}`), 'w', 0o640);
      try {
        let off = 0;
        while (off < data.length) off += (await fh.write(data, off, data.length - off)).bytesWritten;
        await fh.sync();
      } finally {
        await fh.close();
      }
    }),
  );
}

export async function removeThreeCopies(dir: string, name: string): Promise<void> {
  await Promise.all(['hot', 'a', 'b'].map((copy) => unlink(join(dir, `${name}.${copy}`)).catch(() => {})));
}

// ---------------------------------------------------------------------------

if (process.argv[1] !== undefined && resolve(process.argv[1]) === SELF && process.argv[2] === 'bare-server') {
  const file = process.argv[3];
  if (file === undefined) {
    process.stderr.write('usage: node dist/bench/lib.js bare-server FILE\n');
    process.exit(2);
  }
  await runBareServer(file);
}
