#!/usr/bin/env node
// The `valentine` command. Blob writes fsync in libuv's thread pool; its
// default of 4 threads would serialise concurrent uploads, so it is widened
// before anything touches the pool. That is why this entry is CommonJS: an
// ES module entry is itself read through the pool, fixing its size before
// the module's first line runs; this file is read synchronously.
process.env.UV_THREADPOOL_SIZE ??= '64';
void import('./cli.js').then(async ({ main }) => {
  process.exitCode = await main(process.argv.slice(2));
});
