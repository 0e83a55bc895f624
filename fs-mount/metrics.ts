// The mounted drive's metrics, registered on the registry the caller passes in.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export function createMountMetrics(registry: Registry) {
  const registers = [registry];
  return {
    ops: new Counter({ name: 'valentine_fuse_ops_total', help: 'FUSE operations served, by operation and result errno (ok when none).', labelNames: ['op', 'result'], registers }),
    opSeconds: new Histogram({
      name: 'valentine_fuse_op_seconds',
      help: 'Time to serve one FUSE operation.',
      labelNames: ['op'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    openHandles: new Gauge({ name: 'valentine_fuse_open_handles', help: 'File handles open on the mount.', registers }),
    bytesRead: new Counter({ name: 'valentine_fuse_read_bytes_total', help: 'Bytes read through the mount.', registers }),
    bytesWritten: new Counter({ name: 'valentine_fuse_written_bytes_total', help: 'Bytes written through the mount.', registers }),
    commits: new Counter({ name: 'valentine_fuse_commits_total', help: 'Files committed through the engine write path on close or fsync.', labelNames: ['result'], registers }),
    recalls: new Counter({ name: 'valentine_fuse_recalls_total', help: 'Opens of stub objects from the mount (each recalls what it reads).', registers }),
    readFailures: new Counter({ name: 'valentine_fuse_read_failures_total', help: 'Reads answered with EIO (recall or copy failure, or the read deadline passed).', registers }),
  };
}

export type MountMetrics = ReturnType<typeof createMountMetrics>;
