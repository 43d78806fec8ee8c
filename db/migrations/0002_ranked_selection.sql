ALTER TABLE "frame_scores" ADD COLUMN "selection_value" double precision;--> statement-breakpoint
ALTER TABLE "review_tasks" ADD COLUMN "selection" jsonb;--> statement-breakpoint
CREATE INDEX "frames_stream_ingested_idx" ON "frames" USING btree ("stream_id","ingested_at");--> statement-breakpoint
CREATE INDEX "review_tasks_stream_created_idx" ON "review_tasks" USING btree ("stream_id","created_at");