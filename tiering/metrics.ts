// The engine's metrics, registered on the registry the caller passes in.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export function createEngineMetrics(registry: Registry) {
  const registers = [registry];
  return {
    siteUp: new Gauge({ name: 'valentine_site_up', help: 'Whether a site answers (1) or not (0).', labelNames: ['site'], registers }),
    siteWriteSeconds: new Histogram({
      name: 'valentine_site_write_seconds',
      help: 'Time to make one blob durable on a site (write, fsync, rename).',
      labelNames: ['site'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    siteWriteFailures: new Counter({ name: 'valentine_site_write_failures_total', help: 'Blob writes a site failed.', labelNames: ['site'], registers }),
    checksumFailures: new Counter({
      name: 'valentine_checksum_failures_total',
      help: 'Copies found whose bytes do not match their checksum (or could not be read) and were skipped.',
      labelNames: ['site'],
      registers,
    }),
    objectsStored: new Gauge({ name: 'valentine_objects_stored', help: 'Objects in the namespace.', registers }),
    bytesStored: new Gauge({ name: 'valentine_bytes_stored', help: 'Logical bytes of all objects in the namespace.', registers }),
    underReplicatedWrites: new Counter({
      name: 'valentine_under_replicated_writes_total',
      help: 'Writes accepted with fewer replicas than the policy asks for (degraded mode).',
      registers,
    }),
    listEntriesScanned: new Counter({
      name: 'valentine_namespace_list_entries_scanned_total',
      help: 'Namespace entries visited by listings.',
      registers,
    }),
  };
}

export type EngineMetrics = ReturnType<typeof createEngineMetrics>;
