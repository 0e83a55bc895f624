// Runs the compiled tap suite and ends with the plain line CI reads:
// "N passed, N failed" (leaf tests and assertions, across every file).
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Parser } from 'tap-parser';

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? find(p) : p.endsWith('.test.js') ? [p] : [];
  });
}

const only = process.argv.slice(2);
const files = only.length > 0 ? only : find('dist/test').sort();
const tap = spawn(
  process.execPath,
  ['node_modules/tap/dist/esm/run.mjs', '--disable-coverage', '--reporter=tap', '--timeout=600', '--jobs=2', ...files],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
const counts = { pass: 0, fail: 0, skip: 0 };
function attach(parser) {
  let pendingChildren = 0;
  parser.on('child', (child) => {
    pendingChildren++;
    attach(child);
  });
  parser.on('assert', (res) => {
    if (pendingChildren > 0) {
      pendingChildren--; // a subtest's own summary line, already counted through its children
      return;
    }
    if (res.skip || res.todo) counts.skip++;
    else if (res.ok) counts.pass++;
    else counts.fail++;
  });
}
const parser = new Parser();
attach(parser);
tap.stdout.on('data', (d) => {
  process.stdout.write(d);
  parser.write(d);
});
tap.on('close', (code) => {
  parser.end();
  if (code !== 0 && counts.fail === 0) counts.fail = 1; // a crash that reported nothing still fails
  process.stdout.write(`\n${counts.pass} passed, ${counts.fail} failed${counts.skip ? `, ${counts.skip} skipped` : ''}\n`);
  process.exit(code ?? 1);
});
