// Chooses the blob store a process uses: the folder STORE_DIR by default, an S3-compatible bucket
// when STORE_URL is set.
import type { Config } from '../config.ts';
import { LocalBlobStore, type BlobStore } from './blob-store.ts';
import { parseS3Url, S3BlobStore } from './s3-blob-store.ts';

export function openBlobStore(
  config: Pick<Config, 'STORE_DIR' | 'STORE_URL' | 'S3_ENDPOINT' | 'S3_REGION' | 'AWS_ACCESS_KEY_ID' | 'AWS_SECRET_ACCESS_KEY'>,
): BlobStore {
  if (!config.STORE_URL) return new LocalBlobStore(config.STORE_DIR);
  const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey } = config;
  return new S3BlobStore({
    ...parseS3Url(config.STORE_URL),
    endpoint: config.S3_ENDPOINT,
    region: config.S3_REGION,
    credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : undefined,
  });
}
