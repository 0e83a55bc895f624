// The small-file client for bench/mount.ts, run as its own process (it makes
// synchronous calls into a mount, which only a process that does not serve
// that mount may do):
//   node dist/bench/mount-worker.js create|stat|read DIR COUNT SIZE MAX_MS
// prints {"latencies":[ms...],"wallMs":N} on stdout.
import { closeSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const [mode, dir, countArg, sizeArg, maxMsArg] = process.argv.slice(2);
const count = Number(countArg);
const size = Number(sizeArg);
const maxMs = Number(maxMsArg);
if (!mode || !dir || !(count > 0)) {
  process.stderr.write('usage: mount-worker create|stat|read DIR COUNT SIZE MAX_MS\n');
  process.exit(2);
}
const data = Buffer.alloc(size, 0x61);
const name = (i: number) => join(dir, `f${String(i).padStart(6, '0')}`);
const latencies: number[] = [];
const start = performance.now();
for (let i = 0; i < count && performance.now() - start < maxMs; i++) {
  const t0 = performance.now();
  if (mode === 'create') {
    const fd = openSync(name(i), 'w');
    writeSync(fd, data);
    closeSync(fd);
  } else if (mode === 'stat') {
    statSync(name(i));
  } else {
    readFileSync(name(i));
  }
  latencies.push(performance.now() - t0);
}
process.stdout.write(`${JSON.stringify({ latencies, wallMs: performance.now() - start })}\n`);
