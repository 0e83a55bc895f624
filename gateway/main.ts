#!/usr/bin/env node
// The `valentine` command. Blob writes fsync in libuv's thread pool; its
// default of 4 threads would serialise concurrent uploads, so it is widened
// before anything touches the pool.
process.env.UV_THREADPOOL_SIZE ??= '32';
const { main } = await import('./cli.js');
process.exitCode = await main(process.argv.slice(2));
