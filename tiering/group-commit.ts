/**
 * Group commit for LevelDB's synced writes (the namespace, a local site's
 * small blobs): durable batches that arrive while one is being written wait
 * and go together in the next, so concurrent writers share one log fsync
 * instead of queueing an fsync each. Every caller's ops stay atomic (they
 * are all in one batch); if a shared batch fails, each is retried alone, so
 * one bad batch fails only its own caller.
 */
export class GroupCommit<Op> {
  private queue: { ops: Op[]; resolve: () => void; reject: (err: unknown) => void }[] = [];
  private writing = false;

  constructor(private readonly write: (ops: Op[]) => Promise<void>) {}

  commit(ops: Op[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ ops, resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.writing = true;
    while (this.queue.length > 0) {
      const group = this.queue;
      this.queue = [];
      try {
        await this.write(group.length === 1 ? group[0]!.ops : group.flatMap((g) => g.ops));
        for (const g of group) g.resolve();
      } catch (err) {
        if (group.length === 1) group[0]!.reject(err);
        else for (const g of group) await this.write(g.ops).then(g.resolve, g.reject);
      }
    }
    this.writing = false;
  }
}
