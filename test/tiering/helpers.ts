// An engine over real LevelDB on disk and sites the test chooses.
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { DEFAULT_ENGINE_CONFIG, Engine, LocalDirSite, Namespace, createEngineMetrics, silentLogger, type EngineConfig, type Site } from '../../tiering/index.js';

export interface TestEngine {
  engine: Engine;
  registry: Registry;
  hot: Site;
  sites: Site[];
}

export async function localSites(dir: string): Promise<{ hot: LocalDirSite; sites: LocalDirSite[] }> {
  return {
    hot: await LocalDirSite.open('hot', join(dir, 'hot')),
    sites: [await LocalDirSite.open('A', join(dir, 'A')), await LocalDirSite.open('B', join(dir, 'B'))],
  };
}

export async function openEngine(dir: string, parts: { hot: Site; sites: Site[] }, config: Partial<EngineConfig> = {}): Promise<TestEngine> {
  const registry = new Registry();
  const engine = await Engine.open({
    namespace: await Namespace.open(join(dir, 'namespace')),
    hot: parts.hot,
    replicas: parts.sites.slice(0, 2),
    sites: parts.sites,
    config: { ...DEFAULT_ENGINE_CONFIG, ...config },
    log: silentLogger,
    metrics: createEngineMetrics(registry),
  });
  return { engine, registry, ...parts };
}

export async function* chunksOf(data: Buffer, size = 64 * 1024): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

export async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c);
  return Buffer.concat(parts);
}

export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = (m?.values as { value: number; labels: Record<string, string> }[] | undefined)?.find((x) =>
    Object.entries(labels).every(([k, want]) => String(x.labels[k]) === want),
  );
  return v?.value ?? 0;
}
