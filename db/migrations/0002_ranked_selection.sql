ALTER TABLE "frame_scores" ADD COLUMN "selection_value" double precision;--> statement-breakpoint
ALTER TABLE "review_tasks" ADD COLUMN "selection" jsonb;