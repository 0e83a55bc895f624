// The S3 door's metrics.
import { Counter, Histogram, type Registry } from 'prom-client';

export function createS3Metrics(registry: Registry) {
  const registers = [registry];
  return {
    requests: new Counter({ name: 'valentine_s3_requests_total', help: 'S3 requests by operation and HTTP status.', labelNames: ['operation', 'status'], registers }),
    seconds: new Histogram({
      name: 'valentine_s3_request_duration_seconds',
      help: 'S3 request latency by operation.',
      labelNames: ['operation'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    bytesIn: new Counter({ name: 'valentine_s3_received_bytes_total', help: 'Object bytes received by operation.', labelNames: ['operation'], registers }),
    bytesOut: new Counter({ name: 'valentine_s3_sent_bytes_total', help: 'Object bytes sent by operation.', labelNames: ['operation'], registers }),
  };
}
