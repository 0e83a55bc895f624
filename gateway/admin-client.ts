// What the `valentine` subcommands that talk to a running gateway's admin
// listener share: the credentials they authenticate with.
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

/** base64 "accessKey:secretKey": VALENTINE_ACCESS_KEY / VALENTINE_SECRET_KEY, else the data directory's credentials.json. */
export async function adminCredentials(dataDir: string): Promise<string> {
  let key = process.env.VALENTINE_ACCESS_KEY;
  let secret = process.env.VALENTINE_SECRET_KEY;
  if (!key || !secret) {
    const stored = JSON.parse(await readFile(join(resolve(dataDir), 'credentials.json'), 'utf8')) as { accessKey: string; secretKey: string };
    key = stored.accessKey;
    secret = stored.secretKey;
  }
  return Buffer.from(`${key}:${secret}`).toString('base64');
}
