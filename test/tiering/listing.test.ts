// Listing is an ordered range scan: on a bucket of 1,000,000 keys a
// 1,000-key page (with or without a delimiter) visits about 1,000 entries.
import t from 'tap';
import { keys } from '../../tiering/namespace/keys.js';
import { Namespace } from '../../tiering/index.js';
import type { ObjectRecord } from '../../tiering/index.js';
import { removeDir, tempDir } from '../helpers/gateway.js';
import { localSites, metricValue, openEngine } from './helpers.js';

t.test('a page out of 1,000,000 keys costs a page', async (t) => {
  const dir = await tempDir();
  t.teardown(() => removeDir(dir));
  // Fill the namespace directly: 1,000 drawers × 1,000 specimens.
  const ns = await Namespace.open(`${dir}/namespace`);
  await ns.batch([{ type: 'put', key: keys.bucket('big'), value: { v: 1, name: 'big', created: Date.now() } }]);
  const rec = (key: string): ObjectRecord => ({
    v: 1, bucket: 'big', key, size: 1, etag: '"x"', lastModified: 0, meta: {}, tags: {}, segments: [], tier: 'replicated', copies: [],
  });
  for (let d = 0; d < 1000; d++) {
    const drawer = String(d).padStart(4, '0');
    await ns.batch(Array.from({ length: 1000 }, (_, i) => {
      const key = `drawer-${drawer}/specimen-${String(i).padStart(4, '0')}.tif`;
      return { type: 'put' as const, key: keys.object('big', key), value: rec(key) };
    }));
  }
  await ns.close();

  const { engine, registry } = await openEngine(dir, await localSites(dir));
  t.teardown(() => engine.close());
  const scanned = () => metricValue(registry, 'valentine_namespace_list_entries_scanned_total');

  let before = await scanned();
  const drawers = await engine.listObjects('big', { delimiter: '/', maxKeys: 1000 });
  t.equal(drawers.commonPrefixes.length, 1000, '1,000 drawers as common prefixes');
  t.equal(drawers.commonPrefixes[999], 'drawer-0999/');
  t.notOk(drawers.isTruncated);
  t.ok((await scanned()) - before <= 1001, `delimiter page visited ${(await scanned()) - before} entries, not 1,000,000`);

  before = await scanned();
  const page = await engine.listObjects('big', { prefix: 'drawer-0500/', maxKeys: 1000 });
  t.equal(page.objects.length, 1000);
  t.equal(page.objects[0]?.key, 'drawer-0500/specimen-0000.tif');
  t.ok((await scanned()) - before <= 1001, 'prefix page visited about a page');

  before = await scanned();
  const mid = await engine.listObjects('big', { maxKeys: 1000, after: 'drawer-0700/specimen-0999.tif' });
  t.equal(mid.objects[0]?.key, 'drawer-0701/specimen-0000.tif', 'resumes after the marker');
  t.ok(mid.isTruncated);
  t.ok((await scanned()) - before <= 1001, 'a page from the middle visited about a page');

  before = await scanned();
  const resumed = await engine.listObjects('big', { delimiter: '/', maxKeys: 10, after: 'drawer-0100/' });
  t.same(resumed.commonPrefixes.slice(0, 2), ['drawer-0101/', 'drawer-0102/'], 'resuming after a common prefix skips it whole');
  t.ok((await scanned()) - before <= 11);
});
