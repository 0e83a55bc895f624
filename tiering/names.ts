// Naming rules for buckets and keys, checked once at the engine's edge.
import { EngineError } from './errors.js';

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const IPV4 = /^\d+\.\d+\.\d+\.\d+$/;

/** S3's general-purpose bucket rules (3–63 chars, lower case, no IP form, no '..'). */
export function validateBucketName(name: string): void {
  if (!BUCKET.test(name) || name.includes('..') || name.includes('.-') || name.includes('-.') || IPV4.test(name) || name.startsWith('xn--') || name.endsWith('-s3alias')) {
    throw new EngineError('INVALID_BUCKET_NAME', `invalid bucket name: ${JSON.stringify(name.slice(0, 80))}`);
  }
}

export const MAX_KEY_BYTES = 1024;

/** Keys are non-empty UTF-8 of at most 1,024 bytes; the doors check the bytes decode. */
export function validateKey(key: string): void {
  if (key.length === 0) throw new EngineError('INVALID_KEY', 'the object key is empty');
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) throw new EngineError('KEY_TOO_LONG');
  if (!key.isWellFormed()) throw new EngineError('INVALID_KEY', 'the object key is not valid UTF-8');
}
