// `valentine flows issues|ack|workstations|status|scrub`: FLOWS through the
// running gateway's admin listener (--admin, default http://127.0.0.1:9001).
import { parseArgs } from 'node:util';
import { Agent, fetch } from 'undici';
import type { IssuePage, IssueRecord, PassSummary, ReconcileStatus, WorkstationSummary } from '../tiering/index.js';
import { adminCredentials } from './admin-client.js';

const USAGE = `usage: valentine flows issues [--kind KIND] [--state open|resolved|acknowledged] [--workstation NAME] [--bucket B] [--json]
       valentine flows ack ISSUE_ID
       valentine flows workstations [--json]
       valentine flows status [--json]
       valentine flows scrub [BUCKET[/PREFIX]]
  common: [--admin URL] [--data DIR]`;

// A scrub waits for a whole pass: no client-side time limit.
const patient = new Agent({ headersTimeout: 0, bodyTimeout: 0 });

export async function flowsCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        admin: { type: 'string', default: 'http://127.0.0.1:9001' },
        data: { type: 'string', default: './data' },
        kind: { type: 'string' },
        state: { type: 'string' },
        workstation: { type: 'string' },
        bucket: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    process.stderr.write(`valentine flows: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values: o, positionals } = parsed;
  const [sub, arg, ...extra] = positionals;
  const argsOk =
    extra.length === 0 &&
    ((sub === 'issues' && arg === undefined) ||
      (sub === 'ack' && arg !== undefined) ||
      (sub === 'workstations' && arg === undefined) ||
      (sub === 'status' && arg === undefined) ||
      sub === 'scrub');
  if (!argsOk) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  let auth: string;
  try {
    auth = await adminCredentials(o.data!);
  } catch (err) {
    process.stderr.write(`valentine flows: no credentials (${(err as Error).message}); set VALENTINE_ACCESS_KEY and VALENTINE_SECRET_KEY\n`);
    return 2;
  }
  const call = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    let res;
    try {
      res = await fetch(new URL(path, o.admin), {
        method,
        dispatcher: patient,
        headers: { authorization: `Basic ${auth}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      });
    } catch (err) {
      throw new CliError(`cannot reach ${o.admin}: ${(err as Error).cause ?? (err as Error).message}`);
    }
    const out = (await res.json().catch(() => ({}))) as { detail?: string; message?: string };
    if (res.status !== 200) throw new CliError(`${res.status} ${out.detail ?? out.message ?? res.statusText}`);
    return out;
  };
  const print = (s: string) => process.stdout.write(`${s}\n`);
  try {
    if (sub === 'issues') {
      const q = new URLSearchParams({ limit: '1000' });
      for (const f of ['kind', 'state', 'workstation', 'bucket'] as const) if (o[f]) q.set(f, o[f]);
      const all: IssueRecord[] = [];
      for (;;) {
        const page = (await call('GET', `/flows/issues?${q}`)) as IssuePage;
        all.push(...page.issues);
        if (!page.next) break;
        q.set('after', page.next);
      }
      if (o.json) print(JSON.stringify(all, null, 2));
      else {
        for (const i of all) {
          print(`${i.id}  ${i.state.padEnd(12)} ${i.kind.padEnd(17)} x${String(i.count).padEnd(4)} ${i.subject}${i.site ? ` @${i.site}` : ''}  last ${new Date(i.lastSeen).toISOString()}`);
          print(`    ${i.detail}`);
        }
        print(`${all.length} issue${all.length === 1 ? '' : 's'}`);
      }
    } else if (sub === 'ack') {
      const i = (await call('POST', `/flows/issues/${encodeURIComponent(arg!)}/ack`)) as IssueRecord;
      print(`${i.id} ${i.state}${i.acknowledgedBy ? ` by ${i.acknowledgedBy}` : ''}`);
    } else if (sub === 'workstations') {
      const { workstations } = (await call('GET', '/flows/workstations')) as { workstations: WorkstationSummary[] };
      if (o.json) print(JSON.stringify(workstations, null, 2));
      else if (workstations.length === 0) print('no workstations configured');
      for (const w of o.json ? [] : workstations) {
        const states = Object.entries(w.files).map(([s, n]) => `${s} ${n} (${w.bytes[s as keyof typeof w.bytes]} B)`);
        print(`${w.name}: ${w.source} → ${w.target} (clear-down ${w.clearDown} once ${w.protection})`);
        print(`    ${states.join(', ')}; ${w.duplicates} already stored (not stored again); last activity ${w.lastActivity ? new Date(w.lastActivity).toISOString() : 'never'}${w.error ? `; scan failing: ${w.error}` : ''}`);
      }
    } else if (sub === 'status') {
      const s = (await call('GET', '/flows/status')) as ReconcileStatus;
      if (o.json) print(JSON.stringify(s, null, 2));
      else {
        print(s.running ? `running: ${s.running.scope || 'full pass'} ${s.running.objects}/${s.running.total} objects (${Math.round(s.running.progress * 100)}%), ${s.running.bytes} bytes` : 'idle');
        print(s.lastFullPass ? `last full pass: ${passLine(s.lastFullPass)}` : 'last full pass: never');
        print(`next full pass: ${new Date(s.nextFullPassAt).toISOString()}; queued passes ${s.queued}; pending checks ${s.pendingChecks}`);
        const open = Object.entries(s.openIssues);
        print(`open issues: ${open.length === 0 ? 'none' : open.map(([k, n]) => `${k} ${n}`).join(', ')}`);
      }
    } else {
      const slash = arg === undefined ? -1 : arg.indexOf('/');
      const body = arg === undefined ? {} : slash < 0 ? { bucket: arg } : { bucket: arg.slice(0, slash), prefix: arg.slice(slash + 1) };
      const p = (await call('POST', '/flows/scrub', body)) as PassSummary;
      print(`scrub ${p.scope || 'all'}: ${passLine(p)}`);
      return p.repairFailed > 0 ? 1 : 0;
    }
    return 0;
  } catch (err) {
    if (!(err instanceof CliError)) throw err;
    process.stderr.write(`valentine flows: ${err.message}\n`);
    return 1;
  }
}

class CliError extends Error {}

function passLine(p: PassSummary): string {
  return (
    `${p.objects} objects, ${p.bytes} bytes in ${(p.durationMs / 1000).toFixed(1)} s (finished ${new Date(p.finishedAt).toISOString()}); ` +
    `${p.problems} problems, ${p.repaired} repaired, ${p.repairFailed} repairs failed, ${p.orphansCleared} orphans cleared, ${p.uploadsAborted} uploads aborted`
  );
}
