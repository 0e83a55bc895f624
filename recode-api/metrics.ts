// RECODE's metrics, registered on the registry the caller passes in.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export function createRecodeMetrics(registry: Registry, collections: () => { institutionCode: string; collectionCode: string; records: number }[]) {
  const registers = [registry];
  return {
    requests: new Counter({ name: 'valentine_recode_requests_total', help: 'RECODE requests by route and HTTP status.', labelNames: ['method', 'route', 'status'], registers }),
    seconds: new Histogram({
      name: 'valentine_recode_request_duration_seconds',
      help: 'RECODE request latency by route.',
      labelNames: ['method', 'route'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120],
      registers,
    }),
    records: new Gauge({
      name: 'valentine_recode_records',
      help: 'Live (not deleted) records by collection.',
      labelNames: ['institution', 'collection'],
      registers,
      collect() {
        this.reset();
        for (const c of collections()) this.set({ institution: c.institutionCode, collection: c.collectionCode }, c.records);
      },
    }),
    importRecords: new Counter({ name: 'valentine_recode_import_records_total', help: 'Import lines by outcome (created, updated, unchanged, failed).', labelNames: ['outcome'], registers }),
    importBytes: new Counter({ name: 'valentine_recode_import_bytes_total', help: 'Bytes received by imports.', registers }),
    importSeconds: new Histogram({ name: 'valentine_recode_import_duration_seconds', help: 'Duration of whole imports.', buckets: [0.1, 1, 10, 60, 300, 1800, 7200], registers }),
    exportRecords: new Counter({ name: 'valentine_recode_export_records_total', help: 'Records exported by format.', labelNames: ['format'], registers }),
    exportBytes: new Counter({ name: 'valentine_recode_export_bytes_total', help: 'Bytes sent by exports, by format.', labelNames: ['format'], registers }),
    exportSeconds: new Histogram({ name: 'valentine_recode_export_duration_seconds', help: 'Duration of whole exports.', labelNames: ['format'], buckets: [0.1, 1, 10, 60, 300, 1800, 7200], registers }),
    downloadEvents: new Counter({ name: 'valentine_recode_download_events_total', help: 'Download events (exports) by format and completion.', labelNames: ['format', 'complete'], registers }),
  };
}

export type RecodeMetrics = ReturnType<typeof createRecodeMetrics>;
