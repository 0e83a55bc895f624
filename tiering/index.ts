// The engine's public surface. Doors import from here only.
export { Engine, DEFAULT_ENGINE_CONFIG, type Accepted, type EngineConfig, type EngineParts, type WriteInput, type ListObjectsInput } from './engine.js';
export { EngineError, ENGINE_ERRORS, type EngineErrorCode } from './errors.js';
export { createEngineMetrics, type EngineMetrics } from './metrics.js';
export { type Logger, silentLogger } from './log.js';
export { Namespace, type ListPage } from './namespace/namespace.js';
export type { BucketRecord, ObjectRecord, PartRecord, UploadRecord, Segment, TierState, ContentHeaders, PosixAttrs } from './namespace/records.js';
export { Site, type BlobReader, type BlobWriter, type SiteSupports } from './sites/site.js';
export { LocalDirSite } from './sites/local-dir-site.js';
export { MemorySite } from './sites/memory-site.js';
export { validateBucketName, validateKey, MAX_KEY_BYTES } from './names.js';
export type { ByteRange } from './read/segment-reader.js';
export type { Digests } from './write/segment-writer.js';
