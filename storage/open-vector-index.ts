// Chooses the vector index a process uses (VECTOR_INDEX): pgvector in the platform's database by
// default, Pinecone when configured.
import type { Config } from '../config.ts';
import type { Db } from '../db/client.ts';
import { PgvectorIndex } from '../db/pgvector-index.ts';
import { PineconeIndex } from './pinecone-index.ts';
import type { VectorIndex } from './vector-index.ts';

export function openVectorIndex(db: Db, config: Config): VectorIndex {
  if (config.VECTOR_INDEX === 'pinecone') {
    if (!config.PINECONE_API_KEY) throw new Error('VECTOR_INDEX=pinecone needs PINECONE_API_KEY (and PINECONE_INDEX, an index of dimension 64, cosine metric)');
    return new PineconeIndex({ apiKey: config.PINECONE_API_KEY, indexName: config.PINECONE_INDEX });
  }
  return new PgvectorIndex(db, { efSearch: config.HNSW_EF_SEARCH, maxScanTuples: config.HNSW_MAX_SCAN_TUPLES });
}
