#!/usr/bin/env bash
# Until the first release, the schema ships as one initial migration: this regenerates it from
# db/schema.ts with drizzle-kit and prepends the pgvector extension (drizzle-kit does not emit it).
# After a release, use `npm run db:generate` to add migrations instead.
set -euo pipefail
cd "$(dirname "$0")/.."
exec 9>/tmp/dataengine-db-regenerate.lock
flock 9
rm -rf db/migrations
npx drizzle-kit generate --name init >/dev/null
file=db/migrations/0000_init.sql
{
  echo '-- pgvector backs frame embeddings and the similarity index (docs/architecture.md).'
  echo 'CREATE EXTENSION IF NOT EXISTS vector;'
  echo '--> statement-breakpoint'
  cat "$file"
} >"$file.tmp"
mv "$file.tmp" "$file"
echo "regenerated $file"
