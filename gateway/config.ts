// The gateway's configuration: one typed schema, validated once (every problem
// listed), defaults filled in, then frozen. The embedded default needs no
// file at all; flags override the file; environment variables are read here
// and nowhere else.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Ajv } from 'ajv';

export interface SiteConfig {
  name: string;
  type: 'local';
  path?: string; // default <dataDir>/sites/<name>
}

export interface Config {
  dataDir: string;
  s3: { listen: string; region: string; maxXmlBytes: number };
  admin: { listen: string };
  credentials: { accessKey: string; secretKey: string; role: 'admin' | 'readwrite' | 'readonly' }[];
  /** Sites in order: the first `replicas` hold full copies of every write. */
  sites: SiteConfig[];
  replication: { replicas: number; minReplicas: number };
  engine: { blockSize: number; maxObjectSize: number; minPartSize: number };
  /** The FUSE drive: mounted when `dir` is set; `allowOther` lets users other than the gateway's see it. */
  mount: { dir?: string; allowOther: boolean };
}

const listen = { type: 'string', pattern: '^[^\\s:]+:\\d{1,5}$' };

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
        additionalProperties: false,
        required: ['name', 'type'],
        properties: {
          name: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,32}$' },
          type: { enum: ['local'] },
          path: { type: 'string', minLength: 1 },
        },
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
  engine: { blockSize: 1 << 20, maxObjectSize: 5 * 2 ** 40, minPartSize: 5 * 2 ** 20 },
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
  const ajv = new Ajv({ allErrors: true });
  const validate = ajv.compile(schema);
  const problems: string[] = [];
  if (!validate(file)) {
    for (const e of validate.errors ?? []) {
      const where = e.instancePath || '(top level)';
      const extra = e.keyword === 'additionalProperties' ? ` '${(e.params as { additionalProperty: string }).additionalProperty}'` : '';
      problems.push(`${where}: ${e.message}${extra}`);
    }
  }
  const f = file as Partial<Config>;
  const cfg: Config = {
    dataDir: resolve(flags.data ?? f.dataDir ?? './data'),
    s3: { ...DEFAULTS.s3, ...f.s3, ...(flags.listen && { listen: flags.listen }) },
    admin: { ...DEFAULTS.admin, ...f.admin, ...(flags.adminListen && { listen: flags.adminListen }) },
    credentials: [...(f.credentials ?? [])],
    sites: f.sites ?? DEFAULTS.sites,
    replication: { ...DEFAULTS.replication, ...f.replication },
    engine: { ...DEFAULTS.engine, ...f.engine },
    mount: { ...DEFAULTS.mount, ...f.mount },
  };
  const mountDir = flags.mount ?? cfg.mount.dir;
  if (mountDir) cfg.mount.dir = resolve(mountDir);
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
