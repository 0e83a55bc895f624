// Renames are metadata operations: the record moves, the blobs stay, and an
// object replaced by a rename loses its blobs only after the move commits.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { removeDir, tempDir } from '../helpers/gateway.js';
import { chunksOf, localSites, openEngine, readAll } from './helpers.js';

const blobPath = (dir: string, site: string, id: string) => join(dir, site, 'blobs', id.slice(0, 2), id);

t.test('renameObject moves the record, keeps the blobs, replaces the target', async (t) => {
  const dir = await tempDir();
  t.teardown(() => removeDir(dir));
  const { engine } = await openEngine(dir, await localSites(dir));
  t.teardown(() => engine.close());
  await engine.createBucket('ren');
  const a = await engine.putObject('ren', 'a.txt', chunksOf(Buffer.from('alpha')), { meta: { k: 'v' }, posix: { mode: 0o100600, uid: 7, gid: 8 } });
  const b = await engine.putObject('ren', 'b.txt', chunksOf(Buffer.from('bravo')), { meta: {} });
  const moved = await engine.renameObject('ren', 'a.txt', 'b.txt');
  t.equal(moved.segments[0]!.blob, a.segments[0]!.blob, 'same blob: nothing was copied');
  t.same(moved.posix, { mode: 0o100600, uid: 7, gid: 8 }, 'POSIX attributes travel with the record');
  t.same(moved.meta, { k: 'v' });
  await t.rejects(engine.headObject('ren', 'a.txt'), { code: 'NO_SUCH_KEY' });
  t.equal((await readAll(engine.readObject(await engine.headObject('ren', 'b.txt')))).toString(), 'alpha');
  await t.rejects(readFile(blobPath(dir, 'A', b.segments[0]!.blob)), { code: 'ENOENT' }, "the replaced target's blobs are gone");
  await t.resolves(readFile(blobPath(dir, 'B', a.segments[0]!.blob)), 'the moved blob is still in place');
  await t.rejects(engine.renameObject('ren', 'missing', 'x'), { code: 'NO_SUCH_KEY' });
});

t.test('renamePrefix moves a whole directory page by page and refuses a non-empty target', async (t) => {
  const dir = await tempDir();
  t.teardown(() => removeDir(dir));
  const { engine } = await openEngine(dir, await localSites(dir));
  t.teardown(() => engine.close());
  await engine.createBucket('ren');
  const names = ['d/', ...Array.from({ length: 600 }, (_, i) => `d/f${String(i).padStart(4, '0')}`), 'd/sub/deep.txt'];
  for (const n of names) await engine.putObject('ren', n, chunksOf(Buffer.from(n)), { meta: {} });
  await engine.putObject('ren', 'dx', chunksOf(Buffer.from('sibling')), { meta: {} });
  await engine.putObject('ren', 'full/x', chunksOf(Buffer.from('x')), { meta: {} });
  await t.rejects(engine.renamePrefix('ren', 'd/', 'full/'), { code: 'DIRECTORY_NOT_EMPTY' });
  await t.rejects(engine.renamePrefix('ren', 'd/', 'd/sub/in/'), { code: 'INVALID_KEY' });
  await engine.putObject('ren', 'e/', chunksOf(Buffer.alloc(0)), { meta: {} }); // an empty directory marker is replaced
  t.equal(await engine.renamePrefix('ren', 'd/', 'e/'), names.length);
  const listed: string[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await engine.listObjects('ren', { prefix: '', ...(after !== undefined && { after }), maxKeys: 250 });
    listed.push(...page.objects.map((o) => o.key));
    if (!page.isTruncated) break;
    after = page.last;
  }
  t.same(listed, [...names.map((n) => `e/${n.slice(2)}`), 'dx', 'full/x'].sort(), 'every key moved, siblings untouched');
  const rec = await engine.headObject('ren', 'e/sub/deep.txt');
  t.equal((await readAll(engine.readObject(rec))).toString(), 'd/sub/deep.txt', 'bytes readable under the new name');
});
