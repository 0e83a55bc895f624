// Site entries in the config file: local and S3 sites, secrets from the file
// or from a named environment variable, and every problem listed at once.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError, loadConfig } from '../../gateway/config.js';
import { removeDir, tempDir } from '../helpers/gateway.js';

async function configFile(t: { teardown(fn: () => unknown): void }, body: unknown): Promise<string> {
  const dir = await tempDir();
  t.teardown(() => removeDir(dir));
  const file = join(dir, 'valentine.json');
  await writeFile(file, JSON.stringify(body));
  return file;
}

t.test('an S3 site loads with defaults filled in and its secret taken from the environment', async (t) => {
  const config = await configFile(t, {
    sites: [
      { name: 'A', type: 'local' },
      { name: 'B', type: 'local', path: '/srv/b' },
      { name: 'C', type: 's3', endpoint: 'https://rgw.dc3.example.org', bucket: 'valentine-c', accessKey: 'AK', secretKeyEnv: 'SITE_C_SECRET' },
      { name: 'D', type: 's3', endpoint: 'http://10.0.0.9:7480/s3', bucket: 'dc4-objects', prefix: 'museum/d/', region: 'eu-west-2', accessKey: 'AK', secretKey: 'from-file' },
    ],
  });
  const cfg = await loadConfig({ config }, { SITE_C_SECRET: 'from-env' });
  t.same(cfg.sites, [
    { name: 'A', type: 'local' },
    { name: 'B', type: 'local', path: '/srv/b' },
    { name: 'C', type: 's3', endpoint: 'https://rgw.dc3.example.org', bucket: 'valentine-c', prefix: '', region: 'us-east-1', accessKey: 'AK', secretKey: 'from-env' },
    { name: 'D', type: 's3', endpoint: 'http://10.0.0.9:7480/s3', bucket: 'dc4-objects', prefix: 'museum/d/', region: 'eu-west-2', accessKey: 'AK', secretKey: 'from-file' },
  ]);
  t.ok(Object.isFrozen(cfg.sites[2]), 'frozen');
});

t.test('a bad site list fails with every problem listed', async (t) => {
  const config = await configFile(t, {
    sites: [
      { name: 'A', type: 'local', endpoint: 'http://x' },
      { name: 'B', type: 's3', endpoint: 'ftp://x', bucket: 'B!', accessKey: 'k', secretKey: 's', secretKeyEnv: 'SITE_B' },
      { name: 'C', type: 's3', endpoint: 'https://s3.example.org', bucket: 'museum', accessKey: 'k', secretKeyEnv: 'SITE_C_SECRET' },
      { name: 'D', type: 's3', endpoint: 'https://s3.example.org', accessKey: 'k', prefix: 'no-slash' },
      { name: 'E', type: 'ftp' },
    ],
  });
  const err = await loadConfig({ config }, {}).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof ConfigError);
  const problems = (err as ConfigError).problems;
  for (const want of [
    /^\/sites\/0: must NOT have additional properties 'endpoint'$/,
    /^\/sites\/1\/endpoint: must match pattern/,
    /^\/sites\/1\/bucket: must match pattern/,
    /^\/sites\/1: give secretKey or secretKeyEnv, not both$/,
    /^\/sites\/2: environment variable SITE_C_SECRET \(secretKeyEnv\) is not set$/,
    /^\/sites\/3: must have required property 'bucket'$/,
    /^\/sites\/3\/prefix: must match pattern/,
    /^\/sites\/3: must have secretKey or secretKeyEnv$/,
    /^\/sites\/4: type must be 'local' or 's3'$/,
  ]) {
    t.ok(problems.some((p) => want.test(p)), `lists ${want}`);
  }
  t.equal(problems.length, 9, `nothing else: ${problems.join(' | ')}`);
});

t.test('tiering settings: durations, geometry and watermarks are checked with every problem listed', async (t) => {
  const good = await loadConfig({ config: await configFile(t, { tiering: { geometry: { k: 2, m: 1, sites: ['C', 'A', 'B'] } } }), codeAfter: '2s', stubAfter: '1h' }, {});
  t.equal(good.tiering.codeAfter, '2s', 'flag overrides the default');
  t.same(good.tiering.geometry.sites, ['C', 'A', 'B'], 'site order is data');
  const config = await configFile(t, {
    tiering: { codeAfter: 'soon', stripeSize: 1000, geometry: { k: 2, m: 2, sites: ['A', 'B', 'Z'] }, hot: { highWatermark: 0.5, lowWatermark: 0.7 } },
  });
  const err = await loadConfig({ config, stubAfter: '3 weeks' }, {}).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof ConfigError);
  const problems = (err as ConfigError).problems;
  for (const want of [
    /^\/tiering\/codeAfter: must match pattern/,
    /^\/tiering\/stripeSize: must be >= 4096$/,
    /^--stub-after: '3 weeks' is not a duration/,
    /^tiering\.geometry: 2\+2 needs 4 sites, 3 named$/,
    /^tiering\.geometry\.sites: 'Z' is not a configured site$/,
    /^tiering\.hot\.lowWatermark cannot exceed highWatermark$/,
  ]) {
    t.ok(problems.some((p) => want.test(p)), `listed: ${want}`);
  }
});

t.test('flows.scrub.nice: 7 unless set, a whole number from 0 to 19', async (t) => {
  t.equal((await loadConfig({ config: await configFile(t, {}) }, {})).flows.scrub.nice, 7, 'default');
  const set = await loadConfig({ config: await configFile(t, { flows: { scrub: { nice: 0 } } }) }, {});
  t.equal(set.flows.scrub.nice, 0, 'as set');
  t.equal(set.flows.scrub.objectsPerSecond, 200, 'the other scrub settings keep their defaults');
  for (const [nice, want] of [
    [20, /^\/flows\/scrub\/nice: must be <= 19$/],
    [-1, /^\/flows\/scrub\/nice: must be >= 0$/],
    [2.5, /^\/flows\/scrub\/nice: must be integer$/],
  ] as const) {
    const err = await loadConfig({ config: await configFile(t, { flows: { scrub: { nice } } }) }, {}).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.ok(err instanceof ConfigError && err.problems.some((p) => want.test(p)), `nice ${nice}: ${err instanceof ConfigError ? err.problems.join('; ') : 'accepted'}`);
  }
});
