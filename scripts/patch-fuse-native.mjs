// fuse-native 2.2.6 passes the access time twice to `utimens` (the modification
// time never reaches JavaScript), so `touch -d`, `cp -p`, `rsync -a` and
// `tar x` could not set a file's mtime through the mount. This postinstall
// step fixes that one line in the binding's C source and rebuilds it into
// build/Release, which node-gyp-build loads ahead of the shipped prebuild.
// Idempotent; if the compiler or Node headers are missing it warns and the
// prebuild stays in use (mtime then follows atime).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
let dir;
try {
  dir = dirname(require.resolve('fuse-native/package.json'));
} catch {
  process.exit(0); // not installed (optional on this platform)
}
const src = join(dir, 'fuse-native.c');
const BUG = 'FUSE_UINT64_TO_INTS_ARGV(l->atime, 5)';
const FIX = 'FUSE_UINT64_TO_INTS_ARGV(l->mtime, 5)';
const text = readFileSync(src, 'utf8');
if (text.includes(BUG)) writeFileSync(src, text.replace(BUG, FIX));
else if (!text.includes(FIX)) {
  console.warn('patch-fuse-native: utimens source not recognised; leaving fuse-native as shipped');
  process.exit(0);
}
if (existsSync(join(dir, 'build/Release/fuse.node')) && !text.includes(BUG)) process.exit(0);
const gyp = require.resolve('node-gyp/bin/node-gyp.js', { paths: [dir, process.execPath, join(dirname(process.execPath), '../lib/node_modules/npm')] });
const nodedir = ['/usr', join(dirname(process.execPath), '..')].find((d) => existsSync(join(d, 'include/node/node.h')));
const r = spawnSync(process.execPath, [gyp, 'rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : [])], { cwd: dir, stdio: 'inherit' });
if (r.status !== 0) console.warn('patch-fuse-native: rebuild failed; the shipped prebuild stays in use (utimens sets mtime from atime)');
