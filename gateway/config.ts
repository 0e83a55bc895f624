// The gateway's configuration: one typed schema, validated once (every problem
// listed), defaults filled in, then frozen. The embedded default needs no
// file at all; flags override the file; environment variables are read here
// and nowhere else.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Ajv } from 'ajv';
import { DEFAULT_CHECK_NICE } from '../tiering/sites/blob-check.js';

export type SiteConfig = LocalSiteConfig | S3SiteConfig;

export interface LocalSiteConfig {
  name: string;
  type: 'local';
  path?: string; // default <dataDir>/sites/<name>
}

/** A site in a bucket of an S3-compatible store. In the file the secret is `secretKey` or `secretKeyEnv` (an environment variable's name); once loaded it is always `secretKey`. */
export interface S3SiteConfig {
  name: string;
  type: 's3';
  endpoint: string;
  bucket: string;
  prefix: string;
  region: string;
  accessKey: string;
  secretKey: string;
}

export interface Config {
  dataDir: string;
  s3: { listen: string; region: string; maxXmlBytes: number };
  admin: { listen: string };
  credentials: { accessKey: string; secretKey: string; role: 'admin' | 'readwrite' | 'readonly' }[];
  /** Sites in order: the first `replicas` hold full copies of every write. */
  sites: SiteConfig[];
  replication: { replicas: number; minReplicas: number };
  engine: {
    blockSize: number;
    maxObjectSize: number;
    minPartSize: number;
    /** Local sites and the hot tier keep blobs up to this size in a LevelDB store instead of a file each; 0: files only. */
    smallBlobBytes: number;
  };
  tiering: {
    /** Durations as written: '15m', '30d', '2s'. */
    codeAfter: string;
    stubAfter: string;
    /** Largest piece of a stripe per shard, bytes (small objects use smaller pieces). */
    stripeSize: number;
    /** k data + m parity pieces; `sites` names the site of each piece, data first. */
    geometry: { k: number; m: number; sites: string[] };
    hot: { maxBytes?: number; highWatermark: number; lowWatermark: number };
    /** Pause between policy-worker passes. */
    workerInterval: string;
  };
  flows: {
    scrub: {
      /** Caps on the reconciler, so it never starves client traffic. */
      objectsPerSecond: number;
      megabytesPerSecond: number;
      /** A full pass over the namespace starts this long after the last one ended (durations as written). */
      every: string;
      /** Nice value (0-19) of the threads that read and checksum local blobs: higher yields more CPU to clients. */
      nice: number;
    };
    /** Blobs no record points to are deleted once seen so for this long. */
    orphanGrace: string;
    /** Multipart uploads older than this are aborted. */
    uploadMaxAge: string;
    /** Temp files of writes older than this are removed. */
    tempMaxAge: string;
    /** A site (or the hot tier) whose filesystem is more than `maxUsed` (a fraction) full raises a quota issue; checked `every`. */
    space: { maxUsed: number; every: string };
    /** Pause between scans of the workstations' source directories. */
    ingestInterval: string;
    /** How long the ingest state of a cleared file is kept. */
    ingestHistory: string;
    workstations: WorkstationEntry[];
  };
  /** The FUSE drive: mounted when `dir` is set; `allowOther` lets users other than the gateway's see it. */
  mount: { dir?: string; allowOther: boolean };
}

/** A workstation as configured (durations as written; defaults filled in). */
export interface WorkstationEntry {
  name: string;
  source: string;
  bucket: string;
  prefix: string;
  include: string[];
  artefacts: string[];
  clearDown: 'keep' | 'move' | 'delete';
  protection: 'replicated' | 'coded';
  settle: string;
  doneDir?: string;
}

export const DEFAULT_ARTEFACT_PATTERNS = ['*.tmp', '*.part', '~$*', '.DS_Store', 'Thumbs.db', '*.crdownload'];

const DURATION = '^\\d+(\\.\\d+)?(ms|s|m|h|d)$';
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** '2s', '15m', '30d' → milliseconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  return m ? Math.round(Number(m[1]) * UNIT_MS[m[2]!]!) : undefined;
}

const listen = { type: 'string', pattern: '^[^\\s:]+:\\d{1,5}$' };
const siteName = { type: 'string', pattern: '^[A-Za-z0-9_-]{1,32}$' };

const schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    dataDir: { type: 'string', minLength: 1 },
    s3: {
      type: 'object',
      additionalProperties: false,
      properties: { listen, region: { type: 'string', minLength: 1 }, maxXmlBytes: { type: 'integer', minimum: 1024 } },
    },
    admin: { type: 'object', additionalProperties: false, properties: { listen } },
    credentials: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['accessKey', 'secretKey', 'role'],
        properties: {
          accessKey: { type: 'string', pattern: '^[A-Za-z0-9._-]{3,128}$' },
          secretKey: { type: 'string', minLength: 8, maxLength: 256 },
          role: { enum: ['admin', 'readwrite', 'readonly'] },
        },
      },
    },
    sites: {
      type: 'array',
      minItems: 2,
      items: {
        type: 'object',
        required: ['name', 'type'],
        // The `type` picks the branch, so a problem is reported against the
        // kind of site it names rather than as "matches no schema".
        discriminator: { propertyName: 'type' },
        oneOf: [
          {
            additionalProperties: false,
            properties: { name: siteName, type: { const: 'local' }, path: { type: 'string', minLength: 1 } },
          },
          {
            additionalProperties: false,
            required: ['endpoint', 'bucket', 'accessKey'],
            properties: {
              name: siteName,
              type: { const: 's3' },
              endpoint: { type: 'string', pattern: '^https?://[^\\s/?#]+(/[^\\s?#]*)?$' },
              bucket: { type: 'string', pattern: '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$' },
              prefix: { type: 'string', maxLength: 512, pattern: '^([^/\\u0000]+/)*$' },
              region: { type: 'string', pattern: '^[a-z0-9-]{1,64}$' },
              accessKey: { type: 'string', minLength: 1, maxLength: 256 },
              secretKey: { type: 'string', minLength: 1, maxLength: 256 },
              secretKeyEnv: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
            },
          },
        ],
      },
    },
    replication: {
      type: 'object',
      additionalProperties: false,
      properties: { replicas: { type: 'integer', minimum: 1, maximum: 8 }, minReplicas: { type: 'integer', minimum: 1, maximum: 8 } },
    },
    mount: {
      type: 'object',
      additionalProperties: false,
      properties: { dir: { type: 'string', minLength: 1 }, allowOther: { type: 'boolean' } },
    },
    engine: {
      type: 'object',
      additionalProperties: false,
      properties: {
        blockSize: { type: 'integer', minimum: 4096, maximum: 67108864 },
        maxObjectSize: { type: 'integer', minimum: 1 },
        minPartSize: { type: 'integer', minimum: 0 },
        smallBlobBytes: { type: 'integer', minimum: 0, maximum: 1048576 },
      },
    },
    tiering: {
      type: 'object',
      additionalProperties: false,
      properties: {
        codeAfter: { type: 'string', pattern: DURATION },
        stubAfter: { type: 'string', pattern: DURATION },
        workerInterval: { type: 'string', pattern: DURATION },
        stripeSize: { type: 'integer', minimum: 4096, maximum: 67108864, multipleOf: 8 },
        geometry: {
          type: 'object',
          additionalProperties: false,
          required: ['k', 'm', 'sites'],
          properties: {
            k: { type: 'integer', minimum: 1, maximum: 16 },
            m: { type: 'integer', minimum: 1, maximum: 8 },
            sites: { type: 'array', items: { type: 'string' } },
          },
        },
        hot: {
          type: 'object',
          additionalProperties: false,
          properties: {
            maxBytes: { type: 'integer', minimum: 1 },
            highWatermark: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
            lowWatermark: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
          },
        },
      },
    },
    flows: {
      type: 'object',
      additionalProperties: false,
      properties: {
        scrub: {
          type: 'object',
          additionalProperties: false,
          properties: {
            objectsPerSecond: { type: 'number', exclusiveMinimum: 0 },
            megabytesPerSecond: { type: 'number', exclusiveMinimum: 0 },
            every: { type: 'string', pattern: DURATION },
            nice: { type: 'integer', minimum: 0, maximum: 19 },
          },
        },
        space: {
          type: 'object',
          additionalProperties: false,
          properties: {
            maxUsed: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
            every: { type: 'string', pattern: DURATION },
          },
        },
        orphanGrace: { type: 'string', pattern: DURATION },
        uploadMaxAge: { type: 'string', pattern: DURATION },
        tempMaxAge: { type: 'string', pattern: DURATION },
        ingestInterval: { type: 'string', pattern: DURATION },
        ingestHistory: { type: 'string', pattern: DURATION },
        workstations: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['name', 'source', 'bucket'],
            properties: {
              name: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$' },
              source: { type: 'string', minLength: 1 },
              bucket: { type: 'string', pattern: '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$' },
              prefix: { type: 'string', maxLength: 512 },
              include: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 },
              artefacts: { type: 'array', items: { type: 'string', minLength: 1 } },
              clearDown: { enum: ['keep', 'move', 'delete'] },
              protection: { enum: ['replicated', 'coded'] },
              settle: { type: 'string', pattern: DURATION },
              doneDir: { type: 'string', minLength: 1 },
            },
          },
        },
      },
    },
  },
} as const;

export const DEFAULTS: Omit<Config, 'dataDir'> = {
  s3: { listen: '127.0.0.1:9000', region: 'us-east-1', maxXmlBytes: 1 << 20 },
  admin: { listen: '127.0.0.1:9001' },
  credentials: [],
  sites: [
    { name: 'A', type: 'local' },
    { name: 'B', type: 'local' },
    { name: 'C', type: 'local' },
  ],
  replication: { replicas: 2, minReplicas: 2 },
  engine: { blockSize: 1 << 20, maxObjectSize: 5 * 2 ** 40, minPartSize: 5 * 2 ** 20, smallBlobBytes: 16 * 1024 },
  tiering: {
    codeAfter: '15m',
    stubAfter: '30d',
    stripeSize: 1 << 20,
    geometry: { k: 2, m: 1, sites: ['A', 'B', 'C'] },
    hot: { highWatermark: 0.9, lowWatermark: 0.8 },
    workerInterval: '1s',
  },
  flows: {
    scrub: { objectsPerSecond: 200, megabytesPerSecond: 200, every: '7d', nice: DEFAULT_CHECK_NICE },
    space: { maxUsed: 0.9, every: '1m' },
    orphanGrace: '1h',
    uploadMaxAge: '7d',
    tempMaxAge: '1h',
    ingestInterval: '2s',
    ingestHistory: '30d',
    workstations: [],
  },
  mount: { allowOther: false },
};

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

export interface Overrides {
  config?: string;
  data?: string;
  listen?: string;
  adminListen?: string;
  codeAfter?: string;
  stubAfter?: string;
  mount?: string;
}

/** Load, merge (defaults ← file ← flags ← environment), validate and freeze. */
export async function loadConfig(flags: Overrides, env: NodeJS.ProcessEnv = process.env): Promise<Readonly<Config>> {
  let file: Record<string, unknown> = {};
  if (flags.config) {
    let text: string;
    try {
      text = await readFile(flags.config, 'utf8');
    } catch (err) {
      throw new ConfigError([`cannot read ${flags.config}: ${(err as Error).message}`]);
    }
    try {
      file = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError([`${flags.config} is not valid JSON: ${(err as Error).message}`]);
    }
  }
  const ajv = new Ajv({ allErrors: true, discriminator: true });
  const validate = ajv.compile(schema);
  const problems: string[] = [];
  if (!validate(file)) {
    for (const e of validate.errors ?? []) {
      const where = e.instancePath || '(top level)';
      const extra = e.keyword === 'additionalProperties' ? ` '${(e.params as { additionalProperty: string }).additionalProperty}'` : '';
      const message = e.keyword === 'discriminator' ? "type must be 'local' or 's3'" : e.message;
      problems.push(`${where}: ${message}${extra}`);
    }
  }
  const f = file as Partial<Config>;
  const cfg: Config = {
    dataDir: resolve(flags.data ?? f.dataDir ?? './data'),
    s3: { ...DEFAULTS.s3, ...f.s3, ...(flags.listen && { listen: flags.listen }) },
    admin: { ...DEFAULTS.admin, ...f.admin, ...(flags.adminListen && { listen: flags.adminListen }) },
    credentials: [...(f.credentials ?? [])],
    sites: (Array.isArray(f.sites) ? f.sites : DEFAULTS.sites).map((s, i) => (s?.type === 's3' ? s3Site(s as S3SiteInput, `/sites/${i}`, env, problems) : s)),
    replication: { ...DEFAULTS.replication, ...f.replication },
    engine: { ...DEFAULTS.engine, ...f.engine },
    tiering: {
      ...DEFAULTS.tiering,
      ...f.tiering,
      hot: { ...DEFAULTS.tiering.hot, ...f.tiering?.hot },
      ...(flags.codeAfter && { codeAfter: flags.codeAfter }),
      ...(flags.stubAfter && { stubAfter: flags.stubAfter }),
    },
    flows: {
      ...DEFAULTS.flows,
      ...f.flows,
      scrub: { ...DEFAULTS.flows.scrub, ...f.flows?.scrub },
      space: { ...DEFAULTS.flows.space, ...f.flows?.space },
      workstations: (Array.isArray(f.flows?.workstations) ? (f.flows.workstations as Partial<WorkstationEntry>[]) : []).map((w): WorkstationEntry => ({
        ...(w as WorkstationEntry),
        prefix: w.prefix ?? '',
        include: w.include ?? ['*'],
        artefacts: w.artefacts ?? [...DEFAULT_ARTEFACT_PATTERNS],
        clearDown: w.clearDown ?? 'keep',
        protection: w.protection ?? 'replicated',
        settle: w.settle ?? '30s',
        source: typeof w.source === 'string' ? resolve(w.source) : (w.source as unknown as string),
        ...(typeof w.doneDir === 'string' && { doneDir: resolve(w.doneDir) }),
      })),
    },
    mount: { ...DEFAULTS.mount, ...f.mount },
  };
  const mountDir = flags.mount ?? cfg.mount.dir;
  if (mountDir) cfg.mount.dir = resolve(mountDir);
  for (const [what, value] of [
    ['--code-after', cfg.tiering.codeAfter],
    ['--stub-after', cfg.tiering.stubAfter],
    ['tiering.workerInterval', cfg.tiering.workerInterval],
    ['flows.scrub.every', cfg.flows.scrub.every],
    ['flows.space.every', cfg.flows.space.every],
    ['flows.orphanGrace', cfg.flows.orphanGrace],
    ['flows.uploadMaxAge', cfg.flows.uploadMaxAge],
    ['flows.tempMaxAge', cfg.flows.tempMaxAge],
    ['flows.ingestInterval', cfg.flows.ingestInterval],
    ['flows.ingestHistory', cfg.flows.ingestHistory],
    ...cfg.flows.workstations.map((w, i) => [`flows.workstations/${i}/settle`, w.settle] as const),
  ] as const) {
    if (parseDuration(value) === undefined) problems.push(`${what}: '${value}' is not a duration like 2s, 15m, 30d`);
  }
  const wsNames = cfg.flows.workstations.map((w) => w.name);
  if (new Set(wsNames).size !== wsNames.length) problems.push('flows.workstations: workstation names must be unique');
  cfg.flows.workstations.forEach((w, i) => {
    if (typeof w.source === 'string' && resolve(cfg.dataDir).startsWith(w.source)) problems.push(`flows.workstations/${i}: source ${w.source} holds the data directory`);
  });
  const geo = cfg.tiering.geometry;
  if (geo.sites.length !== geo.k + geo.m) problems.push(`tiering.geometry: ${geo.k}+${geo.m} needs ${geo.k + geo.m} sites, ${geo.sites.length} named`);
  if (new Set(geo.sites).size !== geo.sites.length) problems.push('tiering.geometry.sites: each piece needs its own site');
  for (const n of geo.sites) if (!cfg.sites.some((s) => s.name === n)) problems.push(`tiering.geometry.sites: '${n}' is not a configured site`);
  if (cfg.tiering.hot.lowWatermark > cfg.tiering.hot.highWatermark) problems.push('tiering.hot.lowWatermark cannot exceed highWatermark');
  for (const [what, value] of [['--listen', cfg.s3.listen], ['--admin-listen', cfg.admin.listen]] as const) {
    if (!/^[^\s:]+:\d{1,5}$/.test(value) || Number(value.split(':')[1]) > 65535) problems.push(`${what}: '${value}' is not HOST:PORT`);
  }
  const names = cfg.sites.map((s) => s.name);
  if (new Set(names).size !== names.length) problems.push('sites: site names must be unique');
  if (names.includes('hot')) problems.push("sites: 'hot' is reserved for the hot tier");
  if (cfg.replication.replicas > cfg.sites.length) problems.push(`replication.replicas (${cfg.replication.replicas}) exceeds the number of sites (${cfg.sites.length})`);
  if (cfg.replication.minReplicas > cfg.replication.replicas) problems.push('replication.minReplicas cannot exceed replication.replicas');
  const envKey = env.VALENTINE_ACCESS_KEY;
  const envSecret = env.VALENTINE_SECRET_KEY;
  if (Boolean(envKey) !== Boolean(envSecret)) problems.push('VALENTINE_ACCESS_KEY and VALENTINE_SECRET_KEY must be set together');
  else if (envKey && envSecret) cfg.credentials.unshift({ accessKey: envKey, secretKey: envSecret, role: 'admin' });
  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze(cfg);
}

type S3SiteInput = Omit<S3SiteConfig, 'secretKey' | 'prefix' | 'region'> & { secretKey?: string; secretKeyEnv?: string; prefix?: string; region?: string };

/** Fills an S3 site's defaults and takes its secret from the file or the environment variable it names. */
function s3Site(s: S3SiteInput, where: string, env: NodeJS.ProcessEnv, problems: string[]): S3SiteConfig {
  const { secretKeyEnv, ...site } = s;
  let secretKey = site.secretKey ?? '';
  if (site.secretKey !== undefined && secretKeyEnv !== undefined) problems.push(`${where}: give secretKey or secretKeyEnv, not both`);
  else if (secretKeyEnv !== undefined) {
    secretKey = env[secretKeyEnv] ?? '';
    if (!secretKey) problems.push(`${where}: environment variable ${secretKeyEnv} (secretKeyEnv) is not set`);
  } else if (site.secretKey === undefined) problems.push(`${where}: must have secretKey or secretKeyEnv`);
  return { ...site, prefix: site.prefix ?? '', region: site.region ?? 'us-east-1', secretKey };
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

export function parseListen(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
}
