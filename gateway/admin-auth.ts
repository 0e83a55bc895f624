// Authentication for the admin listener (tier transitions, FLOWS, RECODE):
// HTTP Basic with an access key as the user name and its secret key as the
// password, from the same credential store as S3. The listener is meant for
// loopback or an operations network; put TLS in front of it otherwise.
import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Credential, CredentialLookup, Role } from './s3/index.js';

const RANK: Record<Role, number> = { readonly: 0, readwrite: 1, admin: 2 };

export class AdminAuthError extends Error {
  constructor(readonly status: 401 | 403, message: string) {
    super(message);
  }
}

/** The credential an `Authorization: Basic` header proves, if it holds at least `role`. */
export function authenticateAdmin(header: string | undefined, lookup: CredentialLookup, role: Role): Credential {
  const m = /^Basic ([A-Za-z0-9+/=]+)$/.exec(header ?? '');
  if (!m) throw new AdminAuthError(401, 'send Authorization: Basic base64(accessKey:secretKey)');
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = text.indexOf(':');
  const cred = i > 0 ? lookup(text.slice(0, i)) : undefined;
  const given = Buffer.from(i > 0 ? text.slice(i + 1) : '');
  const want = Buffer.from(cred?.secretKey ?? '');
  if (!cred || given.length !== want.length || !timingSafeEqual(given, want)) throw new AdminAuthError(401, 'unknown access key or wrong secret key');
  if (RANK[cred.role] < RANK[role]) throw new AdminAuthError(403, `this call needs the ${role} role; the key has ${cred.role}`);
  return cred;
}

/** A fastify preHandler that answers 401/403 as a JSON problem document. */
export function requireRole(lookup: CredentialLookup, role: Role) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    try {
      authenticateAdmin(req.headers.authorization, lookup, role);
    } catch (err) {
      if (!(err instanceof AdminAuthError)) throw err;
      if (err.status === 401) reply.header('www-authenticate', 'Basic realm="valentine"');
      await reply
        .code(err.status)
        .type('application/problem+json')
        .send({ type: 'about:blank', title: err.status === 401 ? 'Unauthorized' : 'Forbidden', status: err.status, detail: err.message });
    }
  };
}
