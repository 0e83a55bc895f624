// RECODE benchmark: import generated Darwin Core records over HTTP (one
// streamed NDJSON import), indexed queries (exact, prefix, date range) p50 /
// p99, streaming export as NDJSON and CSV, disk bytes per record, and a
// linear extrapolation to 75M records. One JSON line per case on stdout.
//
//   node dist/bench/recode.js [--records N] [--import-seconds S] [--queries Q] [--import-only]
//
// Defaults: 1,000,000 records, the import capped at 60 s (the records stored
// by then are what the rest measures), 300 queries per kind.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { Readable } from 'node:stream';
import { Pool } from 'undici';
import { ACCESS_KEY, SECRET_KEY, log, percentile, round, startGateway } from './lib.js';

const { values: flags } = parseArgs({ options: { records: { type: 'string' }, 'import-seconds': { type: 'string' }, queries: { type: 'string' }, 'import-only': { type: 'boolean' } } });
const RECORDS = Number(flags.records ?? 1_000_000);
const IMPORT_SECONDS = Number(flags['import-seconds'] ?? 60);
const QUERIES = Number(flags.queries ?? 300);
const ENV = { node: process.version, cpu: cpus()[0]?.model ?? 'unknown' };
const AUTH = `Basic ${Buffer.from(`${ACCESS_KEY}:${SECRET_KEY}`).toString('base64')}`;

// The machine's load goes with every line: on a shared host it explains more of the spread than the code does.
const put = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ ...o, ...ENV, loadavg: loadavg().map((x) => round(x, 2)) })}\n`);

const GENERA = ['Apis', 'Bombus', 'Carabus', 'Papilio', 'Quercus', 'Rosa', 'Felis', 'Passer', 'Lumbricus', 'Vespa', 'Salix', 'Pinus'];
const EPITHETS = ['alba', 'mellifera', 'terrestris', 'robur', 'canina', 'catus', 'domesticus', 'nemoralis', 'machaon', 'major', 'minor', 'vulgaris'];
const COUNTRIES = ['United Kingdom', 'France', 'Kenya', 'Brazil', 'Japan', 'Australia', 'Peru', 'India'];

/** Record i, deterministic: ~144 distinct names, dates spread over 1850–2019. */
function record(i: number): string {
  const h = (i * 2654435761) >>> 0;
  const g = GENERA[h % GENERA.length]!;
  const year = 1850 + (h % 170);
  const month = String(1 + ((h >>> 8) % 12)).padStart(2, '0');
  const day = String(1 + ((h >>> 12) % 28)).padStart(2, '0');
  return JSON.stringify({
    data: {
      institutionCode: 'NHM',
      collectionCode: ['BOT', 'ENT', 'ZOO', 'PAL'][i % 4],
      catalogNumber: `NHM-${String(i).padStart(9, '0')}`,
      basisOfRecord: 'PreservedSpecimen',
      scientificName: `${g} ${EPITHETS[(h >>> 4) % EPITHETS.length]}`,
      family: `${g}idae`,
      genus: g,
      recordedBy: `Collector ${h % 500}`,
      eventDate: `${year}-${month}-${day}`,
      country: COUNTRIES[(h >>> 16) % COUNTRIES.length],
      locality: `Locality ${h % 10007}`,
      decimalLatitude: ((h % 18000) - 9000) / 100,
      decimalLongitude: (((h >>> 3) % 36000) - 18000) / 100,
      preparations: 'pinned',
    },
  });
}

/**
 * CPU seconds the gateway process has used (all its threads: LevelDB's writer
 * and compaction included), from /proc. On a shared host wall-clock rates
 * move with the neighbours' load; CPU per record mostly does not.
 */
async function cpuSeconds(pid: number | undefined, mainThreadOnly = false): Promise<number> {
  if (pid === undefined) return NaN;
  try {
    // The main thread's own figures are its task's (its tid is the pid); the process's add up every thread.
    const stat = await readFile(mainThreadOnly ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in USER_HZ (100 on Linux)
  } catch {
    return NaN;
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'valentine-bench-recode-'));
  const gw = await startGateway(dir);
  const pool = new Pool(gw.adminUrl, { connections: 4, bodyTimeout: 0, headersTimeout: 0 });
  try {
    // Import: one streamed request, stopped at the time cap.
    let sent = 0;
    const pid = gw.proc.pid;
    const cpu0 = await cpuSeconds(pid);
    const mainCpu0 = await cpuSeconds(pid, true);
    const t0 = performance.now();
    const deadline = t0 + IMPORT_SECONDS * 1000;
    async function* body() {
      while (sent < RECORDS && performance.now() < deadline) {
        let chunk = '';
        for (let k = 0; k < 1000 && sent < RECORDS; k++) chunk += `${record(sent++)}\n`;
        yield Buffer.from(chunk);
      }
    }
    const res = await pool.request({ method: "POST", path: "/recode/v1/import", headers: { authorization: AUTH, "content-type": "application/x-ndjson" }, body: Readable.from(body()) });
    const sum = (await res.body.json()) as { created: number; failed: number; unchanged: number };
    const importMs = performance.now() - t0;
    if (res.statusCode !== 200 || sum.failed > 0) throw new Error(`import failed: ${res.statusCode} ${JSON.stringify(sum)}`);
    const n = sum.created;
    const importCpuUs = ((await cpuSeconds(pid)) - cpu0) * 1e6 / n;
    const importMainCpuUs = ((await cpuSeconds(pid, true)) - mainCpu0) * 1e6 / n;
    put({ name: 'recode-import-ndjson', samples: n, median: null, p99: null, throughput: round(n / (importMs / 1000), 0), unit: 'records/s', wall_ms: round(importMs, 0), gateway_cpu_us_per_record: round(importCpuUs, 1), gateway_main_thread_cpu_us_per_record: round(importMainCpuUs, 1), capped: n < RECORDS });
    log(`imported ${n} records in ${Math.round(importMs)} ms`);
    if (flags['import-only']) return;

    const du = async (p: string) => Number((await promisify(execFile)('du', ['-sb', p])).stdout.split('\t')[0]);
    const disk = await du(join(dir, 'recode'));
    put({ name: 'recode-disk', samples: n, median: null, p99: null, throughput: null, bytes: disk, bytes_per_record: round(disk / n, 1) });

    // Queries: sequential, one connection, 100 results a page.
    const kinds: [string, (i: number) => string][] = [
      ['exact', (i) => `scientificName=${encodeURIComponent(`${GENERA[i % GENERA.length]} ${EPITHETS[(i * 7) % EPITHETS.length]}`)}`],
      ['prefix', (i) => `scientificName.prefix=${GENERA[i % GENERA.length]!.slice(0, 3)}&sort=index`],
      ['date-range', (i) => `eventDate.from=${1850 + (i % 160)}-01-01&eventDate.to=${1855 + (i % 160)}-12-31&sort=eventDate`],
      ['exact+range', (i) => `country=${encodeURIComponent(COUNTRIES[i % COUNTRIES.length]!)}&decimalLatitude.from=0&decimalLatitude.to=30`],
    ];
    for (const [kind, qs] of kinds) {
      const lat: number[] = [];
      let items = 0;
      for (let i = 0; i < QUERIES; i++) {
        const s = performance.now();
        const r = await pool.request({ method: 'GET', path: `/recode/v1/records?${qs(i)}&limit=100`, headers: { authorization: AUTH } });
        const j = (await r.body.json()) as { items: unknown[] };
        lat.push(performance.now() - s);
        if (r.statusCode !== 200) throw new Error(`query ${qs(i)}: ${r.statusCode}`);
        items += j.items.length;
      }
      lat.sort((a, b) => a - b);
      put({ name: `recode-query-${kind}`, samples: lat.length, median: round(percentile(lat, 0.5)), p99: round(percentile(lat, 0.99)), throughput: round(lat.length / (lat.reduce((a, b) => a + b, 0) / 1000), 0), unit: 'queries/s', records: n, mean_items: round(items / QUERIES, 1) });
    }

    // Export every record, streamed; the client only counts bytes and lines.
    for (const format of ['ndjson', 'csv']) {
      const c0 = await cpuSeconds(pid);
      const s = performance.now();
      const r = await pool.request({ method: 'GET', path: `/recode/v1/export?format=${format}`, headers: { authorization: AUTH } });
      let bytes = 0;
      let lines = 0;
      for await (const c of r.body) {
        bytes += (c as Buffer).length;
        for (let i = (c as Buffer).indexOf(10); i >= 0; i = (c as Buffer).indexOf(10, i + 1)) lines++;
      }
      const ms = performance.now() - s;
      const rows = format === 'csv' ? lines - 1 : lines;
      if (rows !== n) throw new Error(`export ${format}: ${rows} rows, expected ${n}`);
      const cpuUs = ((await cpuSeconds(pid)) - c0) * 1e6 / rows;
      put({ name: `recode-export-${format}`, samples: rows, median: null, p99: null, throughput: round(rows / (ms / 1000), 0), unit: 'records/s', mib_per_s: round(bytes / 2 ** 20 / (ms / 1000), 1), wall_ms: round(ms, 0), gateway_cpu_us_per_record: round(cpuUs, 1) });
    }

    const target = 75_000_000;
    put({
      name: 'recode-extrapolation-75M',
      samples: n,
      median: null,
      p99: null,
      throughput: null,
      records: target,
      disk_gib: round(((disk / n) * target) / 2 ** 30, 1),
      import_hours: round(target / (n / (importMs / 1000)) / 3600, 2),
      // What the measured CPU per record allows with both cores to itself (main thread and LevelDB's threads overlap).
      import_hours_cpu_bound_2_cores: round((target * importCpuUs) / 1e6 / 2 / 3600, 2),
      note: 'linear in records; LevelDB pages and index seeks grow with log(n), so query latency grows slowly',
    });
  } finally {
    await pool.close();
    await gw.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
