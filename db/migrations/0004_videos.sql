CREATE TABLE "video_segments" (
	"video_id" uuid NOT NULL,
	"index" integer NOT NULL,
	"storage_key" text NOT NULL,
	"start_seconds" double precision NOT NULL,
	"end_seconds" double precision NOT NULL,
	"frame_offset" integer NOT NULL,
	"previous_frame_seconds" double precision,
	"frames_sampled" integer,
	"frames_stored" integer,
	"done_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "videos" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"stream_id" text NOT NULL,
	"camera_id" text NOT NULL,
	"content_hash" text NOT NULL,
	"storage_key" text NOT NULL,
	"file_name" text,
	"size_bytes" bigint NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"source" text NOT NULL,
	"sampling" jsonb NOT NULL,
	"probe" jsonb NOT NULL,
	"status" text DEFAULT 'queued' NOT NULL,
	"error" text,
	"segments_total" integer,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "video_segments" ADD CONSTRAINT "video_segments_video_id_videos_id_fk" FOREIGN KEY ("video_id") REFERENCES "public"."videos"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "videos" ADD CONSTRAINT "videos_stream_id_streams_id_fk" FOREIGN KEY ("stream_id") REFERENCES "public"."streams"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "video_segments_pk" ON "video_segments" USING btree ("video_id","index");--> statement-breakpoint
CREATE UNIQUE INDEX "videos_stream_hash_uq" ON "videos" USING btree ("stream_id","content_hash");--> statement-breakpoint
CREATE INDEX "videos_created_idx" ON "videos" USING btree ("created_at");