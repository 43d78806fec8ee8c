ALTER TABLE "labels" ADD COLUMN "import_key" text;--> statement-breakpoint
ALTER TABLE "labels" ADD CONSTRAINT "labels_import_key_unique" UNIQUE("import_key");