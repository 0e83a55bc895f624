// A site held in memory, for tests and for checking that nothing above the
// Site interface depends on a backend. `down` makes it behave like an
// unreachable data centre.
import { Site, type BlobReader, type BlobWriter, type SiteSupports } from './site.js';

export class MemorySite extends Site {
  readonly supports: SiteSupports = { durableRename: false };
  readonly blobs = new Map<string, Buffer>();
  down = false;

  private check(): void {
    if (this.down) throw Object.assign(new Error(`site ${this.name} is unreachable`), { code: 'ECONNREFUSED' });
  }

  protected _createWriter(id: string): BlobWriter {
    const parts: Buffer[] = [];
    let state: 'open' | 'committed' | 'aborted' = 'open';
    const checkOpen = () => {
      if (state !== 'open') throw new Error(`blob ${id} was already ${state}`);
    };
    return {
      write: async (chunk) => {
        this.check();
        checkOpen();
        parts.push(Buffer.from(chunk));
      },
      commit: async () => {
        this.check();
        checkOpen();
        this.blobs.set(id, Buffer.concat(parts));
        state = 'committed';
      },
      abort: async () => {
        if (state === 'open') state = 'aborted';
        parts.length = 0;
      },
    };
  }

  protected async _open(id: string): Promise<BlobReader | undefined> {
    this.check();
    const blob = this.blobs.get(id);
    if (!blob) return undefined;
    return {
      read: async (offset, length) => {
        this.check();
        return Buffer.from(blob.subarray(offset, offset + length));
      },
      close: async () => {},
    };
  }

  protected async _delete(id: string): Promise<void> {
    this.check();
    this.blobs.delete(id);
  }

  protected async _stat(id: string): Promise<{ size: number } | undefined> {
    this.check();
    const blob = this.blobs.get(id);
    return blob && { size: blob.length };
  }

  protected async *_list(): AsyncIterable<string> {
    this.check();
    yield* [...this.blobs.keys()];
  }

  async health(): Promise<boolean> {
    return !this.down;
  }

  async capacity(): Promise<undefined> {
    return undefined;
  }

  async close(): Promise<void> {}
}
