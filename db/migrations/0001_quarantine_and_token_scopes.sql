CREATE TABLE "frame_failures" (
	"frame_id" uuid PRIMARY KEY NOT NULL,
	"stream_id" text NOT NULL,
	"reason" text NOT NULL,
	"detail" text NOT NULL,
	"model_version" text NOT NULL,
	"failed_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "retrain_triggers" ADD COLUMN "run_id" text;--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "streams" text[];--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "camera_ids" text[];--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "token_expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "disabled_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "frame_failures" ADD CONSTRAINT "frame_failures_frame_id_frames_id_fk" FOREIGN KEY ("frame_id") REFERENCES "public"."frames"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "frame_failures" ADD CONSTRAINT "frame_failures_stream_id_streams_id_fk" FOREIGN KEY ("stream_id") REFERENCES "public"."streams"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "frame_failures_stream_failed_idx" ON "frame_failures" USING btree ("stream_id","failed_at");