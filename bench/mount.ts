// The mounted drive against its ceilings, measured in one run on this
// machine: the plain disk, a minimal pass-through FUSE filesystem on the same
// fuse-native port and mount options (bench/passthrough-fs.ts: the ceiling
// for this binding), and Valentine's drive. Every file operation is done by
// a child process (dd, or bench/mount-worker.ts for small files).
//   npm run build && node dist/bench/mount.js [--samples N] [--files N] [--cases seq,small,cat]
// One JSON line per case (name, samples, median, p99, throughput, node,
// cpu), then a summary line with the ratios against the targets. The
// engine's own 1 GiB PUT (engine-put-1GiB) is measured too: a mount write
// ends in it, so it bounds the drive's sequential write.
// Reads are warm: the bytes under each target sit in the page cache, as
// they do for a file just written; what is compared is the path above it.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import { DEFAULT_ENGINE_CONFIG, Engine, LocalDirSite, Namespace, createEngineMetrics, silentLogger } from '../tiering/index.js';
import { ACCESS_KEY, MiB, ROOT, SECRET_KEY, log, percentile, round, spawnReady, startGateway, stopper, type GatewayProc } from './lib.js';

const exec = promisify(execFile);
const { values: flags } = parseArgs({ options: { samples: { type: 'string' }, files: { type: 'string' }, cases: { type: 'string' } } });
const SAMPLES = Number(flags.samples ?? 3);
const FILES = Number(flags.files ?? 10_000);
/** Which groups of cases run (all by default): 1 GiB sequential, 4 KiB small files, cat of 100 MiB. */
const CASES = new Set((flags.cases ?? 'seq,small,cat').split(','));
const SEQ_MIB = 1024;
const SMALL_BYTES = 4096;
const SMALL_MAX_MS = 60_000;
const TARGETS = { seq_read_vs_passthrough: 0.6, seq_write_vs_passthrough: 0.4, create_vs_passthrough: 0.4 };
const ENV = { node: process.version, cpu: cpus()[0]?.model ?? 'unknown' };
const WORKER = join(ROOT, 'dist/bench/mount-worker.js');
const PASSTHROUGH = join(ROOT, 'dist/bench/passthrough-fs.js');

type Line = { name: string; samples: number; median_ms: number | null; p99_ms: number | null; throughput: number | null; unit: string } & Record<string, unknown>;
const results = new Map<string, Line>();

function emit(name: string, latencies: number[], throughput: number | null, unit: string, extra: Record<string, unknown> = {}): void {
  const s = [...latencies].sort((a, b) => a - b);
  // The machine may be shared: the load at the end of each case says how far to trust it.
  const load = loadavg().map((l) => round(l, 2));
  const line: Line = { name, samples: s.length, median_ms: round(percentile(s, 0.5)), p99_ms: round(percentile(s, 0.99)), throughput: round(throughput ?? NaN, 1), unit, ...extra, load, ...ENV };
  results.set(name, line);
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

/** Wall time of one child command, in ms. */
async function timed(cmd: string): Promise<number> {
  const t0 = performance.now();
  await new Promise<void>((res, rej) => {
    const p = spawn('sh', ['-c', cmd], { stdio: ['ignore', 'ignore', 'inherit'] });
    const timer = setTimeout(() => p.kill('SIGKILL'), 300_000);
    p.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) res();
      else rej(new Error(`${cmd} exited ${code}`));
    });
  });
  return performance.now() - t0;
}

async function worker(mode: string, dir: string, count: number): Promise<{ latencies: number[]; wallMs: number }> {
  const { stdout } = await exec(process.execPath, [WORKER, mode, dir, String(count), String(SMALL_BYTES), String(SMALL_MAX_MS)], { maxBuffer: 64 << 20, timeout: SMALL_MAX_MS * 2 });
  return JSON.parse(stdout) as { latencies: number[]; wallMs: number };
}

async function runTarget(target: string, dir: string): Promise<void> {
  if (CASES.has('seq')) await runSequential(target, dir);
  if (CASES.has('small')) await runSmall(target, dir);
}

async function runSequential(target: string, dir: string): Promise<void> {
  const file = join(dir, 'seq.bin');
  const writes: number[] = [];
  const reads: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    // conv=fsync: the bytes are durable when dd ends (the drive commits on close anyway).
    writes.push(await timed(`dd if=/dev/zero of='${file}' bs=1M count=${SEQ_MIB} conv=fsync status=none`));
    reads.push(await timed(`dd if='${file}' of=/dev/null bs=1M status=none`));
  }
  const mibs = (ms: number[]) => SEQ_MIB / (percentile([...ms].sort((a, b) => a - b), 0.5) / 1000);
  emit(`${target}-seq-write-1GiB`, writes, mibs(writes), 'MiB/s', { bytes: SEQ_MIB * MiB });
  emit(`${target}-seq-read-1GiB`, reads, mibs(reads), 'MiB/s', { bytes: SEQ_MIB * MiB, cache: 'warm' });
  await rm(file, { force: true }).catch(() => undefined);
  await exec('rm', ['-f', file]).catch(() => undefined);
}

async function runSmall(target: string, dir: string): Promise<void> {
  const small = join(dir, 'small');
  await exec('mkdir', ['-p', small]);
  // stat and read visit the files create made within its time cap.
  let count = FILES;
  for (const mode of ['create', 'stat', 'read']) {
    const r = await worker(mode, small, count);
    if (mode === 'create') count = r.latencies.length;
    emit(`${target}-small-${mode}-4KiB`, r.latencies, r.latencies.length / (r.wallMs / 1000), 'files/s', { files: r.latencies.length, file_bytes: SMALL_BYTES });
  }
  await exec('rm', ['-rf', small], { timeout: 300_000 });
}

/** The engine's write path alone (what a mount write and an S3 PUT both end in): 1 GiB, three copies. */
async function enginePut(dir: string): Promise<void> {
  const hot = await LocalDirSite.open('hot', join(dir, 'hot'));
  const sites = [await LocalDirSite.open('A', join(dir, 'A')), await LocalDirSite.open('B', join(dir, 'B'))];
  const engine = await Engine.open({
    namespace: await Namespace.open(join(dir, 'namespace')),
    hot,
    replicas: sites,
    sites,
    config: DEFAULT_ENGINE_CONFIG,
    log: silentLogger,
    metrics: createEngineMetrics(new Registry()),
  });
  try {
    await engine.createBucket('bench');
    const chunk = Buffer.alloc(MiB);
    const ms: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const t0 = performance.now();
      await engine.putObject('bench', 'seq', (async function* () {
        for (let j = 0; j < SEQ_MIB; j++) yield chunk;
      })(), { meta: {} });
      ms.push(performance.now() - t0);
    }
    emit('engine-put-1GiB', ms, SEQ_MIB / (percentile([...ms].sort((a, b) => a - b), 0.5) / 1000), 'MiB/s', { bytes: SEQ_MIB * MiB, copies: 3 });
  } finally {
    await engine.close();
  }
}

/** Ask the running gateway to move one object to `action` (admin route, as `valentine tier` does). */
async function force(gw: GatewayProc, action: 'code' | 'stub', bucket: string, path: string): Promise<void> {
  const res = await fetch(`${gw.adminUrl}/admin/tier/${action}`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${ACCESS_KEY}:${SECRET_KEY}`).toString('base64')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ bucket, path }),
  });
  const out = (await res.json()) as { matched: number };
  if (res.status !== 200 || out.matched !== 1) throw new Error(`${action} ${bucket}/${path}: ${res.status} ${JSON.stringify(out)}`);
}

/**
 * cat of a 100 MiB file on the drive: replicated (just written), then as a
 * stub (coded, hot copy evicted: every sample reads from the shards, and is
 * made a stub again before the next one).
 */
async function catCases(mnt: string, gw: GatewayProc): Promise<void> {
  const obj = join(mnt, 'bench', 'cat100.bin');
  await timed(`dd if=/dev/urandom of='${obj}' bs=1M count=100 status=none`);
  const mibs = (ms: number[]) => 100 / (percentile([...ms].sort((a, b) => a - b), 0.5) / 1000);
  const cats: number[] = [];
  for (let i = 0; i < SAMPLES; i++) cats.push(await timed(`cat '${obj}' > /dev/null`));
  emit('valentine-cat-100MiB-replicated', cats, mibs(cats), 'MiB/s', { bytes: 100 * MiB });
  await force(gw, 'code', 'bench', 'cat100.bin');
  const stubs: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    await force(gw, 'stub', 'bench', 'cat100.bin');
    const tier = (await exec('getfattr', ['--only-values', '-n', 'user.valentine.tier', obj])).stdout;
    if (tier !== 'stub') throw new Error(`cat100.bin is ${tier}, not a stub`);
    stubs.push(await timed(`cat '${obj}' > /dev/null`));
  }
  emit('valentine-cat-100MiB-stub', stubs, mibs(stubs), 'MiB/s', { bytes: 100 * MiB, target_ms: 2000 });
}

async function main(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'valentine-bench-mount-'));
  const cleanups: (() => Promise<void>)[] = [async () => void (await rm(root, { recursive: true, force: true }))];
  try {
    log(`plain disk under ${root}`);
    const disk = join(root, 'disk');
    await mkdir(disk);
    await runTarget('disk', disk);

    log('pass-through FUSE (fuse-native, same mount options)');
    const ptSrc = join(root, 'pt-src');
    const ptMnt = join(root, 'pt-mnt');
    await mkdir(ptSrc);
    await mkdir(ptMnt);
    const pt = await spawnReady('passthrough', [PASSTHROUGH, ptSrc, ptMnt], process.env, (m) => (m.ready === true ? true : undefined));
    const stopPt = stopper(pt.proc);
    cleanups.unshift(async () => {
      await stopPt();
      await exec('fusermount', ['-uz', ptMnt]).catch(() => undefined);
    });
    await runTarget('passthrough', ptMnt);
    await cleanups.shift()!();

    if (CASES.has('seq')) {
      log('engine write path alone');
      await enginePut(join(root, 'e-data'));
      await rm(join(root, 'e-data'), { recursive: true, force: true });
    }

    log('Valentine drive');
    const vMnt = join(root, 'v-mnt');
    const gw = await startGateway(join(root, 'v-data'), ['--mount', vMnt]);
    cleanups.unshift(async () => {
      await gw.stop();
      await exec('fusermount', ['-uz', vMnt]).catch(() => undefined);
    });
    await exec('mkdir', [join(vMnt, 'bench')]);
    await runTarget('valentine', join(vMnt, 'bench'));

    if (CASES.has('cat')) await catCases(vMnt, gw);

    const ratio = (a: string, b: string) => round((results.get(a)?.throughput ?? NaN) / (results.get(b)?.throughput ?? NaN), 2);
    const got = {
      seq_read_vs_passthrough: ratio('valentine-seq-read-1GiB', 'passthrough-seq-read-1GiB'),
      seq_write_vs_passthrough: ratio('valentine-seq-write-1GiB', 'passthrough-seq-write-1GiB'),
      create_vs_passthrough: ratio('valentine-small-create-4KiB', 'passthrough-small-create-4KiB'),
    };
    const met = Object.fromEntries(Object.entries(TARGETS).map(([k, want]) => [k, (got[k as keyof typeof got] ?? 0) >= want]));
    process.stdout.write(`${JSON.stringify({ name: 'summary', ratios: got, targets: TARGETS, met, ...ENV })}\n`);
  } finally {
    for (const c of cleanups) await c().catch((err: unknown) => log(`cleanup: ${String(err)}`));
  }
}

await main();
