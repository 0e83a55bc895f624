// The credential store: keys from the config (and the environment, merged in
// by config.ts), else a key pair generated once into the data directory with
// mode 0600 and printed at start, the way a newcomer expects to find it.
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Credential, CredentialLookup } from './s3/index.js';

export interface CredentialStore {
  lookup: CredentialLookup;
  /** Set when this start generated or loaded the data directory's own key pair. */
  local?: Credential;
}

export async function openCredentials(configured: readonly Credential[], dataDir: string): Promise<CredentialStore> {
  let local: Credential | undefined;
  if (configured.length === 0) {
    const file = join(dataDir, 'credentials.json');
    try {
      local = JSON.parse(await readFile(file, 'utf8')) as Credential;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      local = {
        accessKey: `VAL${randomBytes(9).toString('hex').toUpperCase()}`,
        secretKey: randomBytes(30).toString('base64url'),
        role: 'admin',
      };
      await writeFile(file, JSON.stringify(local, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
    }
  }
  const byKey = new Map([...configured, ...(local ? [local] : [])].map((c) => [c.accessKey, c]));
  return { lookup: (k) => byKey.get(k), ...(local && { local }) };
}
