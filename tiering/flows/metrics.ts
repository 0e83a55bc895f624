// FLOWS metrics, registered on the registry the caller passes in.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export function createFlowsMetrics(registry: Registry) {
  const registers = [registry];
  return {
    issues: new Gauge({ name: 'valentine_flows_issues', help: 'FLOWS issues by kind and state (open, acknowledged, resolved).', labelNames: ['kind', 'state'], registers }),
    repairs: new Counter({ name: 'valentine_flows_repairs_total', help: 'Copies and shards rebuilt (done) or that could not be rebuilt (failed).', labelNames: ['what', 'result'], registers }),
    scrubObjects: new Counter({ name: 'valentine_flows_scrub_objects_total', help: 'Objects checked by the reconciler.', registers }),
    scrubBytes: new Counter({ name: 'valentine_flows_scrub_bytes_total', help: 'Bytes of copies and shards read and verified by the reconciler.', registers }),
    scrubProgress: new Gauge({ name: 'valentine_flows_scrub_progress_ratio', help: 'Fraction of the current pass done (1 when idle).', registers }),
    scrubBacklog: new Gauge({ name: 'valentine_flows_scrub_backlog_objects', help: 'Objects the current pass has yet to check.', registers }),
    lastFullPassTime: new Gauge({ name: 'valentine_flows_last_full_pass_timestamp_seconds', help: 'When the last full pass over the namespace finished.', registers }),
    lastFullPassDuration: new Gauge({ name: 'valentine_flows_last_full_pass_duration_seconds', help: 'How long the last full pass over the namespace took.', registers }),
    orphansCleared: new Counter({ name: 'valentine_flows_orphans_cleared_total', help: 'Blobs no record pointed to, deleted after the grace period.', labelNames: ['site'], registers }),
    ingestFiles: new Gauge({ name: 'valentine_flows_ingest_files', help: 'Workstation files per ingest state.', labelNames: ['workstation', 'state'], registers }),
    ingestBytes: new Gauge({ name: 'valentine_flows_ingest_bytes', help: 'Bytes of workstation files per ingest state.', labelNames: ['workstation', 'state'], registers }),
    ingestedFiles: new Counter({ name: 'valentine_flows_ingested_files_total', help: 'Workstation files stored and verified.', labelNames: ['workstation'], registers }),
    ingestedBytes: new Counter({ name: 'valentine_flows_ingested_bytes_total', help: 'Bytes of workstation files stored and verified.', labelNames: ['workstation'], registers }),
    ingestDuplicates: new Counter({
      name: 'valentine_flows_ingest_duplicate_files_total',
      help: 'Workstation files whose bytes the bucket already held under another key: verified against that object, not stored again.',
      labelNames: ['workstation'],
      registers,
    }),
    ingestSeconds: new Histogram({
      name: 'valentine_flows_ingest_seconds',
      help: 'Time from a workstation file settling until its stored copy is verified.',
      labelNames: ['workstation'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900],
      registers,
    }),
    uploadsAborted: new Counter({ name: 'valentine_flows_uploads_aborted_total', help: 'Multipart uploads abandoned past their age limit and aborted.', registers }),
  };
}

export type FlowsMetrics = ReturnType<typeof createFlowsMetrics>;
