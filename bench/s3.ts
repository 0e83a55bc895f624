// S3 benchmark: starts the built gateway on a temp data dir and measures
// large (64 MiB) PUT/GET, small (4 KiB) PUT/GET/HEAD/LIST, and, in the same
// run, the ceilings they are judged against: a bare Node http server
// streaming a 64 MiB file from disk, and writing 64 MiB three times with
// fsync straight to disk.
//
//   node dist/bench/s3.js [--only large,small,ceiling]
//
// stdout: one JSON line per case, then one {"name":"s3-summary"} line.
// Progress goes to stderr. Any non-2xx response (or a wrong body length)
// fails the run with exit code 1.
// VALENTINE_BENCH_GATEWAY_NODE_ARGS passes node flags to the gateway only
// (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  ACCESS_KEY,
  KiB,
  MiB,
  S3Bench,
  SECRET_KEY,
  Signer,
  log,
  removeThreeCopies,
  round,
  runConcurrent,
  startBareServer,
  startGateway,
  stats,
  writeThreeCopies,
  type BareServerProc,
  type GatewayProc,
  type RunResult,
} from './lib.js';

const LARGE_SIZE = 64 * MiB;
const SMALL_SIZE = 4 * KiB;
/** Objects per large case, by concurrency; and a time cap per case. */
const LARGE_COUNT: Record<number, number> = { 1: 8, 4: 16 };
const LARGE_MAX_MS = 25_000;
const LARGE_CONCURRENCY = [1, 4];
const SMALL_OPS = 2_000;
const SMALL_MAX_MS = 10_000;
const SMALL_CONCURRENCY = [1, 8, 32];
const LIST_PAGE = 100;
const SMALL_DISK_CONCURRENCY = [1, 32];
const SMALL_DISK_MAX_MS = 4_000;

const TARGETS = {
  large_get_vs_bare: 0.7,
  large_put_vs_3copy_disk: 0.6,
  small_put_ops_s_c32: 1_000,
  small_get_ops_s_c32: 3_000,
};

const ENV = { node: process.version, cpu: cpus()[0]?.model ?? 'unknown' };

type Line = Record<string, unknown> & { name: string; throughput: number | null };

function emit(line: Line): Line {
  process.stdout.write(`${JSON.stringify(line)}\n`);
  return line;
}

function caseLine(name: string, extra: Record<string, unknown>, r: RunResult, concurrency: number, objectBytes: number, large: boolean, errors = 0): Line {
  const st = stats(r);
  const secs = r.wallMs / 1000;
  const throughput = large ? round((st.samples * objectBytes) / MiB / secs, 1) : round(st.samples / secs, 1);
  return {
    name,
    ...extra,
    object_bytes: objectBytes,
    samples: st.samples,
    median_ms: st.median_ms,
    p99_ms: st.p99_ms,
    throughput,
    unit: large ? 'MiB/s' : 'ops/s',
    concurrency,
    ...ENV,
    mean_ms: st.mean_ms,
    min_ms: st.min_ms,
    max_ms: st.max_ms,
    wall_ms: st.wall_ms,
    errors,
  };
}

const pad = (i: number) => String(i).padStart(6, '0');

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { only: { type: 'string' } }, strict: true });
  const only = new Set((values.only ?? 'large,ceiling,small').split(',').map((s) => s.trim()));
  const t0 = performance.now();
  const load0 = loadavg()[0] ?? NaN;

  const tmp = await mkdtemp(join(tmpdir(), 'valentine-bench-'));
  let gw: GatewayProc | undefined;
  let bare: BareServerProc | undefined;
  let client: S3Bench | undefined;
  let bareClient: S3Bench | undefined;
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      await Promise.allSettled([client?.close(), bareClient?.close()]);
      await Promise.allSettled([gw?.stop(), bare?.stop()]);
      await rm(tmp, { recursive: true, force: true });
    })());
  const onSignal = (sig: NodeJS.Signals) => {
    log(`${sig}: stopping`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const results = new Map<string, Line>();
  const put = (l: Line) => results.set(l.name, emit(l));

  try {
    const signer = new Signer(ACCESS_KEY, SECRET_KEY);
    await signer.selfCheck();
    const largeBody = randomBytes(LARGE_SIZE);
    const smallBody = randomBytes(SMALL_SIZE);

    log(`data dir ${tmp}; starting gateway`);
    gw = await startGateway(join(tmp, 'gateway'));
    log(`gateway ${gw.s3Url} (pid ${gw.proc.pid})`);
    client = new S3Bench(gw.s3Url, signer, 64);
    const c = client;
    await c.createBucket('bench-large');
    await c.createBucket('bench-small');
    c.assertNoErrors('create buckets');

    // ---- large objects and their ceilings ----------------------------------
    // Each gateway case runs right next to its ceiling, so drift in other load
    // on the machine skews the ratio as little as possible.
    const dir = join(tmp, 'ceiling');
    await mkdir(dir, { recursive: true });
    const doLarge = only.has('large');
    const doCeil = only.has('ceiling');
    const largeKeys: string[] = [];
    if (doLarge) {
      log('large: warm-up');
      await c.put('/bench-large/warmup', largeBody);
      await c.get('/bench-large/warmup', LARGE_SIZE);
      c.assertNoErrors('large warm-up');
    }
    for (const conc of LARGE_CONCURRENCY) {
      const n = LARGE_COUNT[conc]!;
      if (doLarge) {
        log(`large PUT c${conc}: ${n} x 64 MiB`);
        const done: string[] = [];
        const r = await runConcurrent(conc, n, LARGE_MAX_MS, async (i) => {
          const key = `/bench-large/c${conc}/${pad(i)}`;
          await c.put(key, largeBody);
          done.push(key);
        });
        c.assertNoErrors(`large PUT c${conc}`);
        await c.verifyGet(done[0]!, largeBody);
        largeKeys.push(...done);
        put(caseLine(`s3-large-put-c${conc}`, { op: 'PutObject' }, r, conc, LARGE_SIZE, true));
      }
      if (doCeil) {
        log(`ceiling 3-copy disk PUT c${conc}: ${n} x 3 x 64 MiB`);
        const names: string[] = [];
        const r = await runConcurrent(conc, n, LARGE_MAX_MS, async (i) => {
          const name = `c${conc}-${pad(i)}`;
          names.push(name);
          await writeThreeCopies(dir, name, largeBody);
        });
        await Promise.all(names.map((nm) => removeThreeCopies(dir, nm)));
        put(caseLine(`ceiling-3copy-disk-put-c${conc}`, { op: 'fs.promises write + FileHandle.sync, 3 files in parallel' }, r, conc, LARGE_SIZE, true));
      }
    }
    let b: S3Bench | undefined;
    if (doCeil) {
      const file = join(dir, 'bare-64MiB.bin');
      await writeFile(file, largeBody);
      bare = await startBareServer(file);
      log(`bare server ${bare.url} (pid ${bare.proc.pid})`);
      bareClient = new S3Bench(bare.url, signer, 8);
      b = bareClient;
      await b.get('/bare', LARGE_SIZE);
      await b.get(`/bare?hwm=${MiB}`, LARGE_SIZE);
    }
    for (const conc of LARGE_CONCURRENCY) {
      const n = LARGE_COUNT[conc]!;
      if (doLarge) {
        log(`large GET c${conc}: ${n} x 64 MiB`);
        const r = await runConcurrent(conc, n, LARGE_MAX_MS, (i) => c.get(largeKeys[i % largeKeys.length]!, LARGE_SIZE));
        c.assertNoErrors(`large GET c${conc}`);
        await c.verifyGet(largeKeys[largeKeys.length - 1]!, largeBody);
        put(caseLine(`s3-large-get-c${conc}`, { op: 'GetObject' }, r, conc, LARGE_SIZE, true));
      }
      if (b) {
        // Default createReadStream chunks (64 KiB), and 1 MiB chunks (the gateway's block size).
        for (const [suffix, path, chunk] of [['', '/bare', 64 * KiB], ['-1MiB-chunks', `/bare?hwm=${MiB}`, MiB]] as const) {
          log(`ceiling bare GET${suffix} c${conc}: ${n} x 64 MiB`);
          const bb = b;
          const r = await runConcurrent(conc, n, LARGE_MAX_MS, () => bb.get(path, LARGE_SIZE));
          b.assertNoErrors(`bare GET c${conc}`);
          await b.verifyGet(path, largeBody);
          put(caseLine(`ceiling-bare-get${suffix}-c${conc}`, { op: 'node:http + fs.createReadStream', read_chunk_bytes: chunk }, r, conc, LARGE_SIZE, true));
        }
      }
    }
    if (bareClient) await bareClient.close();
    bareClient = undefined;
    if (bare) await bare.stop();
    bare = undefined;
    if (doCeil) {
      // Context for the small PUT target: the same three fsynced files per 4 KiB object.
      // They stay until the run ends: on ext4 without a journal (this machine's
      // root), the inode allocator steps one by one over inodes freed in the
      // last one to six minutes, so deleting thousands of files here would tax
      // every file the small PUT cases create next.
      for (const conc of SMALL_DISK_CONCURRENCY) {
        log(`ceiling 3-copy disk PUT 4 KiB c${conc}`);
        const r = await runConcurrent(conc, SMALL_OPS, SMALL_DISK_MAX_MS, (i) => writeThreeCopies(dir, `small-c${conc}-${pad(i)}`, smallBody));
        put(caseLine(`ceiling-3copy-disk-put-small-c${conc}`, { op: 'fs.promises write + FileHandle.sync, 3 files in parallel' }, r, conc, SMALL_SIZE, false));
      }
    }

    // ---- small objects ---------------------------------------------------
    if (only.has('small')) {
      log('small: warm-up');
      await runConcurrent(8, 300, 10_000, async (i) => {
        await c.put(`/bench-small/warmup/${pad(i)}`, smallBody);
        await c.get(`/bench-small/warmup/${pad(i)}`, SMALL_SIZE);
        await c.head(`/bench-small/warmup/${pad(i)}`, SMALL_SIZE);
      });
      await c.list('bench-small', { 'max-keys': String(LIST_PAGE) });
      c.assertNoErrors('small warm-up');

      const keys: string[] = [];
      for (const conc of SMALL_CONCURRENCY) {
        log(`small PUT c${conc}`);
        const done: string[] = [];
        const r = await runConcurrent(conc, SMALL_OPS, SMALL_MAX_MS, async (i) => {
          const key = `/bench-small/small/c${conc}/${pad(i)}`;
          await c.put(key, smallBody);
          done.push(key);
        });
        c.assertNoErrors(`small PUT c${conc}`);
        await c.verifyGet(done[0]!, smallBody);
        keys.push(...done);
        put(caseLine(`s3-small-put-c${conc}`, { op: 'PutObject' }, r, conc, SMALL_SIZE, false));
      }
      // Object names under small/ in listing order, for start-after.
      const names = keys.map((k) => k.slice('/bench-small/'.length)).sort();
      let offset = 0;
      for (const conc of SMALL_CONCURRENCY) {
        log(`small GET c${conc}`);
        const base = offset;
        const rg = await runConcurrent(conc, SMALL_OPS, SMALL_MAX_MS, (i) => c.get(keys[(base + i) % keys.length]!, SMALL_SIZE));
        c.assertNoErrors(`small GET c${conc}`);
        await c.verifyGet(keys[base % keys.length]!, smallBody);
        put(caseLine(`s3-small-get-c${conc}`, { op: 'GetObject' }, rg, conc, SMALL_SIZE, false));
        offset += rg.latencies.length;

        log(`small HEAD c${conc}`);
        const base2 = offset;
        const rh = await runConcurrent(conc, SMALL_OPS, SMALL_MAX_MS, (i) => c.head(keys[(base2 + i) % keys.length]!, SMALL_SIZE));
        c.assertNoErrors(`small HEAD c${conc}`);
        put(caseLine(`s3-small-head-c${conc}`, { op: 'HeadObject' }, rh, conc, SMALL_SIZE, false));
        offset += rh.latencies.length;

        log(`small LIST c${conc} over ${keys.length + 300} objects`);
        const span = Math.max(1, names.length - LIST_PAGE);
        const listQuery = (i: number) => ({ 'max-keys': String(LIST_PAGE), 'start-after': names[(i * 37) % span]! });
        const bytes: number[] = [];
        const rl = await runConcurrent(conc, SMALL_OPS, SMALL_MAX_MS, async (i) => {
          bytes.push(await c.list('bench-small', listQuery(i)));
        });
        c.assertNoErrors(`small LIST c${conc}`);
        await c.verifyList('bench-small', listQuery(1), LIST_PAGE);
        put(
          caseLine(
            `s3-small-list-c${conc}`,
            {
              op: 'ListObjectsV2',
              max_keys: LIST_PAGE,
              bucket_objects: keys.length + 300,
              mean_response_bytes: Math.round(bytes.reduce((a, x) => a + x, 0) / Math.max(1, bytes.length)),
            },
            rl,
            conc,
            SMALL_SIZE,
            false,
          ),
        );
      }
    }

    if (doCeil) {
      // The small GET ceiling: the same client against a bare Node server streaming a 4 KiB file.
      const file = join(dir, 'bare-4KiB.bin');
      await writeFile(file, smallBody);
      bare = await startBareServer(file);
      bareClient = new S3Bench(bare.url, signer, 64);
      const bb = bareClient;
      await bb.get('/bare', SMALL_SIZE);
      log('ceiling bare GET 4 KiB c32');
      const r = await runConcurrent(32, SMALL_OPS, SMALL_MAX_MS, () => bb.get('/bare', SMALL_SIZE));
      bb.assertNoErrors('bare small GET');
      put(caseLine('ceiling-bare-get-small-c32', { op: 'node:http + fs.createReadStream' }, r, 32, SMALL_SIZE, false));
      await bareClient.close();
      bareClient = undefined;
      await bare.stop();
      bare = undefined;
    }

    // ---- summary -----------------------------------------------------------
    const tp = (name: string) => results.get(name)?.throughput ?? null;
    const ratio = (a: string, b: string) => {
      const x = tp(a);
      const y = tp(b);
      return x !== null && y !== null && y > 0 ? round(x / y, 3) : null;
    };
    // The bare-Node GET ceiling is the better of its two chunk sizes.
    const bareBest = (conc: number) => {
      const xs = [tp(`ceiling-bare-get-c${conc}`), tp(`ceiling-bare-get-1MiB-chunks-c${conc}`)].filter((x): x is number => x !== null);
      return xs.length ? Math.max(...xs) : null;
    };
    const getRatio = (conc: number) => {
      const x = tp(`s3-large-get-c${conc}`);
      const y = bareBest(conc);
      return x !== null && y !== null && y > 0 ? round(x / y, 3) : null;
    };
    const getC1 = getRatio(1);
    const getC4 = getRatio(4);
    const putC1 = ratio('s3-large-put-c1', 'ceiling-3copy-disk-put-c1');
    const putC4 = ratio('s3-large-put-c4', 'ceiling-3copy-disk-put-c4');
    const smallPut = tp('s3-small-put-c32');
    const smallGet = tp('s3-small-get-c32');
    const smallDisk = tp('ceiling-3copy-disk-put-small-c32');
    const all = (xs: (number | null)[], min: number) => (xs.some((x) => x === null) ? null : xs.every((x) => x! >= min));
    emit({
      name: 's3-summary',
      throughput: null,
      large_get_vs_bare_c1: getC1,
      large_get_vs_bare_c4: getC4,
      large_put_vs_3copy_disk_c1: putC1,
      large_put_vs_3copy_disk_c4: putC4,
      small_put_ops_s_c32: smallPut,
      small_get_ops_s_c32: smallGet,
      small_put_vs_3copy_disk_c32: ratio('s3-small-put-c32', 'ceiling-3copy-disk-put-small-c32'),
      small_3copy_disk_ops_s_c32: smallDisk,
      small_get_vs_bare_c32: ratio('s3-small-get-c32', 'ceiling-bare-get-small-c32'),
      small_bare_get_ops_s_c32: tp('ceiling-bare-get-small-c32'),
      targets: TARGETS,
      meets_large_get: all([getC1, getC4], TARGETS.large_get_vs_bare),
      meets_large_put: all([putC1, putC4], TARGETS.large_put_vs_3copy_disk),
      meets_small_put: all([smallPut], TARGETS.small_put_ops_s_c32),
      meets_small_get: all([smallGet], TARGETS.small_get_ops_s_c32),
      ...ENV,
      total_requests: client.counters.requests,
      errors: client.counters.errors,
      total_s: round((performance.now() - t0) / 1000, 1),
      // Other work on the machine skews every number: the 1-minute load average at start and end.
      loadavg_1m: [round(load0, 2), round(loadavg()[0] ?? NaN, 2)],
    });
    return 0;
  } catch (err) {
    process.stderr.write(`[bench] FAILED: ${(err as Error)?.stack ?? String(err)}\n`);
    return 1;
  } finally {
    await cleanup();
    log(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
}

process.exitCode = await main();
