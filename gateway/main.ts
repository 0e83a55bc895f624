#!/usr/bin/env node
// The `valentine` command. libuv's thread pool (blob I/O, fsyncs, LevelDB
// writes) keeps its default of 4 threads: on a 2-core machine a wider pool
// measured slower for both small PUTs and GETs (lock contention and context
// switches cost more than the extra fsyncs in flight gain). An operator with
// more cores can set UV_THREADPOOL_SIZE in the environment.
const { main } = await import('./cli.js');
process.exitCode = await main(process.argv.slice(2));
