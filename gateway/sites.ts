// Builds a Site from its config entry: the one place that maps a site `type`
// onto a class.
import { join } from 'node:path';
import { LocalDirSite, S3Site, type Site } from '../tiering/index.js';
import type { SiteConfig } from './config.js';

export async function openSite(config: SiteConfig, dataDir: string, smallBlobBytes: number): Promise<Site> {
  switch (config.type) {
    case 'local':
      return LocalDirSite.open(config.name, config.path ?? join(dataDir, 'sites', config.name), { smallBlobBytes });
    case 's3':
      return new S3Site(config.name, {
        endpoint: config.endpoint,
        bucket: config.bucket,
        prefix: config.prefix,
        region: config.region,
        accessKey: config.accessKey,
        secretKey: config.secretKey,
      });
  }
}
