// The command line: `valentine serve` starts the gateway (the composition
// root: the one place that picks concrete classes and wires them together).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { Engine, LocalDirSite, Namespace, createEngineMetrics, type Site } from '../tiering/index.js';
import { MountUnavailableError, mount, type Mount } from '../fs-mount/index.js';
import { buildAdmin } from './admin.js';
import { ConfigError, loadConfig, parseListen, type Config } from './config.js';
import { openCredentials } from './credentials.js';
import { buildS3 } from './s3/index.js';

const USAGE = `usage: valentine serve [--data DIR] [--listen HOST:PORT] [--admin-listen HOST:PORT] [--mount DIR] [--config FILE]

  --data DIR                 data directory (default ./data): namespace, hot tier, local sites
  --listen HOST:PORT         S3 listener (default 127.0.0.1:9000)
  --admin-listen HOST:PORT   metrics, health and admin listener (default 127.0.0.1:9001)
  --mount DIR                also serve the namespace as a FUSE drive at DIR (npm start
                             uses ./mnt); without FUSE on the machine it says why and
                             serves S3 alone
  --config FILE              JSON configuration for real deployments

Credentials: VALENTINE_ACCESS_KEY / VALENTINE_SECRET_KEY, else a key pair
generated once into DIR/credentials.json (mode 0600).`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
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
  await mkdir(config.dataDir, { recursive: true });

  const hot = await LocalDirSite.open('hot', join(config.dataDir, 'hot'));
  const sites: Site[] = [];
  for (const s of config.sites) sites.push(await LocalDirSite.open(s.name, s.path ?? join(config.dataDir, 'sites', s.name)));
  const replicas = sites.slice(0, config.replication.replicas);
  const engine = await Engine.open({
    namespace: await Namespace.open(join(config.dataDir, 'namespace')),
    hot,
    replicas,
    sites,
    config: {
      blockSize: config.engine.blockSize,
      maxObjectSize: config.engine.maxObjectSize,
      maxPartSize: 5 * 2 ** 30,
      minPartSize: config.engine.minPartSize,
      minReplicas: config.replication.minReplicas,
    },
    log,
    metrics: createEngineMetrics(registry),
  });
  const credentials = await openCredentials(config.credentials, config.dataDir);

  const s3 = buildS3({ engine, credentials: credentials.lookup, options: { region: config.s3.region, maxXmlBytes: config.s3.maxXmlBytes }, log, registry });
  const admin = buildAdmin({
    engine,
    registry,
    credentials: credentials.lookup,
    writeQuorum: { hot: hot.name, replicas: replicas.map((s) => s.name), minReplicas: config.replication.minReplicas },
  });
  const s3Url = await s3.listen(parseListen(config.s3.listen));
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
  log.info({ s3: s3Url, admin: adminUrl, dataDir: config.dataDir, sites: sites.map((s) => s.name), ...(drive && { mount: drive.dir }) }, 'valentine ready');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    await drive?.close();
    await Promise.allSettled([s3.close(), admin.close()]);
    await engine.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}
