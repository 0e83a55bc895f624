// Serialises work per key inside this process (one gateway owns a data dir):
// read-old-record, commit, delete-superseded must not interleave for one key.
export class KeyLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(fn);
    this.tails.set(key, next);
    try {
      return await next;
    } finally {
      if (this.tails.get(key) === next) this.tails.delete(key);
    }
  }

  /** Hold every lock in `keys` (taken in sorted order, so two callers never deadlock). */
  async runAll<T>(keys: string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort();
    const take = (i: number): Promise<T> => (i === sorted.length ? fn() : this.run(sorted[i]!, () => take(i + 1)));
    return take(0);
  }
}
