// The FUSE door's errors. Operations throw EngineErrors (which carry their
// errno) or FsErrors for what only a filesystem can say (EISDIR, EXDEV...);
// errnoOf turns either into the errno name the kernel gets, in this one place.
import { EngineError } from '../tiering/index.js';

export class FsError extends Error {
  constructor(
    readonly errno: string,
    message?: string,
  ) {
    super(message ?? errno);
    this.name = 'FsError';
  }
}

/** The errno name for `err`; `expected` is false for bugs and surprises (logged as errors). */
export function errnoOf(err: unknown): { errno: string; expected: boolean } {
  if (err instanceof EngineError) return { errno: err.errno, expected: err.errno !== 'EIO' };
  if (err instanceof FsError) return { errno: err.errno, expected: err.errno !== 'EIO' };
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)) return { errno: code, expected: false };
  return { errno: 'EIO', expected: false };
}
