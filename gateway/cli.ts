// The command line: `valentine serve` starts the gateway (the composition
// root: the one place that picks concrete classes and wires them together).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { Engine, Ingest, IssueLog, LocalDirSite, Namespace, Reconciler, SpaceWatch, TierWorker, createEngineMetrics, createFlowsMetrics, fileChecker, type Site } from '../tiering/index.js';
import { buildRecode } from '../recode-api/index.js';
import { flowsCommand } from './flows-command.js';
import { tierCommand } from './tier-command.js';
import { MountUnavailableError, mount, type Mount } from '../fs-mount/index.js';
import { buildAdmin } from './admin.js';
import { ConfigError, loadConfig, parseDuration, parseListen, type Config } from './config.js';
import { openCredentials } from './credentials.js';
import { openSite } from './sites.js';
import { buildS3 } from './s3/index.js';

const USAGE = `usage: valentine serve [--data DIR] [--listen HOST:PORT] [--admin-listen HOST:PORT] [--mount DIR] [--config FILE]
                       [--code-after DURATION] [--stub-after DURATION]
       valentine tier code|stub|recall BUCKET[/KEY|/PREFIX] [--admin URL] [--data DIR]
       valentine flows issues|ack|workstations|status|scrub ... [--admin URL] [--data DIR]

  --data DIR                 data directory (default ./data): namespace, hot tier, local sites
  --listen HOST:PORT         S3 listener (default 127.0.0.1:9000)
  --admin-listen HOST:PORT   metrics, health and admin listener (default 127.0.0.1:9001)
  --mount DIR                also serve the namespace as a FUSE drive at DIR (npm start
                             uses ./mnt); without FUSE on the machine it says why and
                             serves S3 alone
  --config FILE              JSON configuration for real deployments
  --code-after DURATION      erasure-code objects this long after their last write (default 15m)
  --stub-after DURATION      evict hot copies not read for this long (default 30d); e.g. 2s, 15m, 30d

  tier code|stub|recall      force a transition on one object, every object under a prefix,
                             or a whole bucket, through the running gateway's admin listener
                             (--admin, default http://127.0.0.1:9001)
  flows issues|ack ID|workstations|status
                             the FLOWS issue list (filters --kind --state --workstation --bucket),
                             ingest state and the reconciler's last full pass and progress
  flows scrub [BUCKET[/PREFIX]]
                             check (and repair) every object now, or those under a prefix, and wait

Credentials: VALENTINE_ACCESS_KEY / VALENTINE_SECRET_KEY, else a key pair
generated once into DIR/credentials.json (mode 0600).`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'tier') return tierCommand(rest);
  if (command === 'flows') return flowsCommand(rest);
  if (command !== 'serve') {
    process.stderr.write(`${USAGE}\n`);
    return command === undefined || command === '--help' || command === 'help' ? 0 : 2;
  }
  let flags;
  try {
    flags = parseArgs({
      args: rest,
      options: {
        data: { type: 'string' },
        listen: { type: 'string' },
        'admin-listen': { type: 'string' },
        config: { type: 'string' },
        'code-after': { type: 'string' },
        'stub-after': { type: 'string' },
        mount: { type: 'string' },
        help: { type: 'boolean' },
      },
      strict: true,
    }).values;
  } catch (err) {
    process.stderr.write(`valentine: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (flags.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let config: Readonly<Config>;
  try {
    config = await loadConfig({
      ...(flags.config && { config: flags.config }),
      ...(flags.data && { data: flags.data }),
      ...(flags.listen && { listen: flags.listen }),
      ...(flags['admin-listen'] && { adminListen: flags['admin-listen'] }),
      ...(flags['code-after'] && { codeAfter: flags['code-after'] }),
      ...(flags['stub-after'] && { stubAfter: flags['stub-after'] }),
      ...(flags.mount && { mount: flags.mount }),
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`valentine: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  await serve(config);
  return 0;
}

async function serve(config: Readonly<Config>): Promise<void> {
  const log = pino({ base: undefined });
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'valentine_process_' });
  // prom-client names these gauges *_total, which Prometheus' lint rejects (promtool check metrics); they add little.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(`valentine_process_${name}`);
  await mkdir(config.dataDir, { recursive: true });

  const metrics = createEngineMetrics(registry);
  // The hot tier is local disk by design: its small reads need not queue for the thread pool.
  const hot = await LocalDirSite.open('hot', join(config.dataDir, 'hot'), { inlineSmallReads: true, smallBlobBytes: config.engine.smallBlobBytes });
  const sites: Site[] = [];
  for (const s of config.sites) sites.push(await openSite(s, config.dataDir, config.engine.smallBlobBytes));
  const replicas = sites.slice(0, config.replication.replicas);
  const namespace = await Namespace.open(join(config.dataDir, 'namespace'));
  const engine = await Engine.open({
    namespace,
    hot,
    replicas,
    sites,
    config: {
      blockSize: config.engine.blockSize,
      maxObjectSize: config.engine.maxObjectSize,
      maxPartSize: 5 * 2 ** 30,
      minPartSize: config.engine.minPartSize,
      minReplicas: config.replication.minReplicas,
      geometry: { ...config.tiering.geometry, maxPieceSize: config.tiering.stripeSize },
      codeAfterMs: parseDuration(config.tiering.codeAfter)!,
      stubAfterMs: parseDuration(config.tiering.stubAfter)!,
      hot: config.tiering.hot,
    },
    log,
    metrics,
  });
  const worker = new TierWorker(
    engine,
    { intervalMs: parseDuration(config.tiering.workerInterval)!, batch: 16, codingSites: config.tiering.geometry.sites },
    log,
    metrics,
  );
  const flowsMetrics = createFlowsMetrics(registry);
  const issues = await IssueLog.open(namespace, flowsMetrics);
  fileChecker.nice = config.flows.scrub.nice;
  const reconciler = new Reconciler({
    engine,
    namespace,
    hot,
    replicas,
    sites,
    issues,
    metrics: flowsMetrics,
    log,
    options: {
      objectsPerSecond: config.flows.scrub.objectsPerSecond,
      bytesPerSecond: config.flows.scrub.megabytesPerSecond * 2 ** 20,
      fullPassEveryMs: parseDuration(config.flows.scrub.every)!,
      orphanGraceMs: parseDuration(config.flows.orphanGrace)!,
      uploadMaxAgeMs: parseDuration(config.flows.uploadMaxAge)!,
      tempMaxAgeMs: parseDuration(config.flows.tempMaxAge)!,
    },
  });
  const space = new SpaceWatch({ sites: [hot, ...sites], issues, log, maxUsed: config.flows.space.maxUsed, intervalMs: parseDuration(config.flows.space.every)! });
  for (const site of [hot, ...sites]) {
    site.onWriteFailure((err, bytes) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') void space.noSpace(site.name, bytes).catch((e) => log.warn({ err: String(e) }, 'could not record an issue'));
    });
  }
  for (const w of config.flows.workstations) {
    if (!(await namespace.getBucket(w.bucket))) {
      await engine.createBucket(w.bucket);
      log.info({ workstation: w.name, bucket: w.bucket }, 'created the bucket a workstation ingests into');
    }
  }
  const ingest = new Ingest({
    engine,
    namespace,
    issues,
    metrics: flowsMetrics,
    log,
    intervalMs: parseDuration(config.flows.ingestInterval)!,
    concurrency: 64,
    historyMs: parseDuration(config.flows.ingestHistory)!,
    workstations: config.flows.workstations.map((w) => ({
      name: w.name,
      source: w.source,
      bucket: w.bucket,
      prefix: w.prefix,
      include: w.include,
      artefacts: w.artefacts,
      clearDown: w.clearDown,
      protection: w.protection,
      doneDir: w.doneDir ?? join(w.source, 'done'),
      settleMs: parseDuration(w.settle)!,
    })),
  });
  // A read that skipped a bad copy: record it and have the reconciler repair that object.
  engine.onBadCopy((rec, f) => {
    const missing = f.reason === 'missing';
    void issues
      .raise({ kind: missing ? 'missing-copy' : 'checksum-mismatch', subject: `${rec.bucket}/${rec.key}`, bucket: rec.bucket, key: rec.key, site: f.site, detail: `read of blob ${f.blob}: ${f.reason}` })
      .catch((err) => log.warn({ err: String(err) }, 'could not record an issue'));
    reconciler.checkSoon(rec.bucket, rec.key);
  });
  const credentials = await openCredentials(config.credentials, config.dataDir);

  const s3 = buildS3({ engine, credentials: credentials.lookup, options: { region: config.s3.region, maxXmlBytes: config.s3.maxXmlBytes }, log, registry });
  let s3Url: string | undefined;
  // RECODE reports links to deleted objects as FLOWS issues, and checks every link on the scrub schedule.
  const recode = buildRecode({
    engine,
    credentials: credentials.lookup,
    dataDir: config.dataDir,
    log,
    registry,
    mediaBaseUrl: () => s3Url,
    issues,
    linkCheckEveryMs: parseDuration(config.flows.scrub.every)!,
  });
  const admin = buildAdmin({
    engine,
    registry,
    credentials: credentials.lookup,
    recode,
    writeQuorum: { hot: hot.name, replicas: replicas.map((s) => s.name), minReplicas: config.replication.minReplicas },
    flows: { issues, reconciler, workstations: () => ingest.summaries() },
  });
  s3Url = await s3.listen(parseListen(config.s3.listen));
  const adminUrl = await admin.listen(parseListen(config.admin.listen));
  let drive: Mount | undefined;
  if (config.mount.dir) {
    try {
      drive = await mount({ engine, dir: config.mount.dir, tmpDir: join(config.dataDir, 'mount-tmp'), allowOther: config.mount.allowOther, log, registry });
    } catch (err) {
      if (!(err instanceof MountUnavailableError)) throw err;
      process.stderr.write(`valentine: not mounting ${config.mount.dir}: ${err.message}; serving S3 only\n`);
      log.warn({ dir: config.mount.dir, reason: err.message }, 'FUSE unavailable; serving S3 only');
    }
  }
  if (credentials.local) {
    process.stderr.write(
      `\nS3 credentials (stored in ${join(config.dataDir, 'credentials.json')}):\n` +
        `  access key: ${credentials.local.accessKey}\n  secret key: ${credentials.local.secretKey}\n\n`,
    );
  }
  worker.start();
  await reconciler.start();
  await space.start();
  await ingest.start();
  log.info({ s3: s3Url, admin: adminUrl, dataDir: config.dataDir, sites: sites.map((s) => s.name), ...(drive && { mount: drive.dir }) }, 'valentine ready');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    await drive?.close();
    await Promise.allSettled([s3.close(), admin.close(), worker.stop(), reconciler.stop(), space.stop(), ingest.stop()]);
    await engine.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}
