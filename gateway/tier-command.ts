// `valentine tier code|stub|recall BUCKET[/KEY|/PREFIX]`: asks the running
// gateway's admin listener to force a transition and prints what it did.
// Credentials: VALENTINE_ACCESS_KEY / VALENTINE_SECRET_KEY, else the data
// directory's generated credentials.json.
import { parseArgs } from 'node:util';
import { adminCredentials as credentials } from './admin-client.js';
import { TIER_ACTIONS, type TierAction, type TierOutcome } from './tier-routes.js';

export async function tierCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { admin: { type: 'string', default: 'http://127.0.0.1:9001' }, data: { type: 'string', default: './data' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    process.stderr.write(`valentine tier: ${(err as Error).message}\n`);
    return 2;
  }
  const [action, target] = parsed.positionals;
  if (!TIER_ACTIONS.includes(action as TierAction) || !target || parsed.positionals.length !== 2) {
    process.stderr.write('usage: valentine tier code|stub|recall BUCKET[/KEY|/PREFIX] [--admin URL] [--data DIR]\n');
    return 2;
  }
  const slash = target.indexOf('/');
  const bucket = slash < 0 ? target : target.slice(0, slash);
  const path = slash < 0 ? '' : target.slice(slash + 1);
  let auth: string;
  try {
    auth = await credentials(parsed.values.data!);
  } catch (err) {
    process.stderr.write(`valentine tier: no credentials (${(err as Error).message}); set VALENTINE_ACCESS_KEY and VALENTINE_SECRET_KEY\n`);
    return 2;
  }
  let res: Response;
  try {
    res = await fetch(new URL(`/admin/tier/${action}`, parsed.values.admin), {
      method: 'POST',
      headers: { authorization: `Basic ${auth}`, 'content-type': 'application/json' },
      body: JSON.stringify({ bucket, path }),
    });
  } catch (err) {
    process.stderr.write(`valentine tier: cannot reach ${parsed.values.admin}: ${(err as Error).cause ?? (err as Error).message}\n`);
    return 1;
  }
  const body = (await res.json().catch(() => ({}))) as Partial<TierOutcome> & { detail?: string };
  if (res.status !== 200 && body.matched === undefined) {
    process.stderr.write(`valentine tier: ${res.status} ${body.detail ?? res.statusText}\n`);
    return 1;
  }
  process.stdout.write(`${action} ${target}: ${body.matched} matched, ${body.changed} changed, ${body.failed?.length ?? 0} failed\n`);
  for (const f of body.failed ?? []) process.stdout.write(`  failed ${f.key}: ${f.error}\n`);
  return res.status === 200 ? 0 : 1;
}
