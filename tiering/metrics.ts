// The engine's metrics, registered on the registry the caller passes in.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export function createEngineMetrics(registry: Registry) {
  const registers = [registry];
  return {
    siteUp: new Gauge({ name: 'valentine_site_up', help: 'Whether a site answers (1) or not (0).', labelNames: ['site'], registers }),
    siteWriteSeconds: new Histogram({
      name: 'valentine_site_write_seconds',
      help: 'Time to make one blob durable on a site (write, fsync, rename or upload).',
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
    tierObjects: new Gauge({ name: 'valentine_tier_objects', help: 'Objects per tier state.', labelNames: ['state'], registers }),
    tierBytes: new Gauge({ name: 'valentine_tier_bytes', help: 'Logical bytes of objects per tier state.', labelNames: ['state'], registers }),
    siteObjects: new Gauge({ name: 'valentine_site_objects', help: 'Objects with a copy or shard on each site (hot is the hot tier).', labelNames: ['site'], registers }),
    siteBytes: new Gauge({ name: 'valentine_site_bytes', help: 'Bytes of copies and shards on each site.', labelNames: ['site'], registers }),
    transitions: new Counter({ name: 'valentine_tier_transitions_total', help: 'Objects moved between tier states (coded, stub, recalled).', labelNames: ['to'], registers }),
    protectionLagSeconds: new Histogram({
      name: 'valentine_protection_lag_seconds',
      help: 'Time from an object write until all its shards are placed and verified.',
      buckets: [1, 5, 15, 60, 300, 900, 1200, 1800, 3600, 7200, 21600, 86400],
      registers,
    }),
    codingSeconds: new Histogram({ name: 'valentine_coding_seconds', help: 'Time to code one object (read, encode, write, verify).', buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60], registers }),
    codedBytes: new Counter({ name: 'valentine_coded_bytes_total', help: 'Object bytes erasure-coded.', registers }),
    tierBacklog: new Gauge({ name: 'valentine_tier_backlog', help: 'Replicated objects past their coding time, not yet coded.', registers }),
    recallFirstByteSeconds: new Histogram({
      name: 'valentine_recall_first_byte_seconds',
      help: 'Time to the first byte of a read served from shards (a stub).',
      labelNames: ['path'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5],
      registers,
    }),
    recallLastByteSeconds: new Histogram({
      name: 'valentine_recall_last_byte_seconds',
      help: 'Time to the last byte of a read served from shards (a stub).',
      labelNames: ['path'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 120],
      registers,
    }),
    recallsInFlight: new Gauge({ name: 'valentine_recalls_in_flight', help: 'Reads being served from shards right now.', registers }),
    hotUsage: new Gauge({ name: 'valentine_hot_usage_ratio', help: 'Fraction of the hot tier in use (of its budget, else of its filesystem).', registers }),
    hotWatermark: new Gauge({ name: 'valentine_hot_watermark_ratio', help: 'Hot-tier eviction watermarks.', labelNames: ['level'], registers }),
    listEntriesScanned: new Counter({
      name: 'valentine_namespace_list_entries_scanned_total',
      help: 'Namespace entries visited by listings.',
      registers,
    }),
  };
}

export type EngineMetrics = ReturnType<typeof createEngineMetrics>;
