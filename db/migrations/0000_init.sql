-- pgvector backs frame embeddings and the similarity index (docs/architecture.md).
CREATE EXTENSION IF NOT EXISTS vector;
--> statement-breakpoint
CREATE TABLE "audit_log" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"actor" text NOT NULL,
	"action" text NOT NULL,
	"target" text NOT NULL,
	"details" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "dataset_snapshots" (
	"id" text PRIMARY KEY NOT NULL,
	"dataset_key" text NOT NULL,
	"num_images" integer NOT NULL,
	"num_annotations" integer NOT NULL,
	"trigger" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "deployments" (
	"id" serial PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"version" text NOT NULL,
	"previous_version" text,
	"action" text NOT NULL,
	"triggered_by" text NOT NULL,
	"reason" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "drift_boosts" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"stream_id" text NOT NULL,
	"camera_id" text,
	"reason" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "drift_reports" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"segment_type" text NOT NULL,
	"segment_key" text NOT NULL,
	"model_version" text NOT NULL,
	"drift" boolean NOT NULL,
	"max_statistic" double precision NOT NULL,
	"min_adjusted_p" double precision NOT NULL,
	"window_size" integer NOT NULL,
	"report" jsonb NOT NULL,
	"check_id" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "drift_settings" (
	"stream_id" text PRIMARY KEY NOT NULL,
	"settings" jsonb NOT NULL,
	"updated_by" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "frame_scores" (
	"frame_id" uuid NOT NULL,
	"model_version" text NOT NULL,
	"stream_id" text NOT NULL,
	"camera_id" text NOT NULL,
	"num_detections" integer NOT NULL,
	"embedding" vector(128) NOT NULL,
	"scored_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "frames" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"seq" bigserial NOT NULL,
	"stream_id" text NOT NULL,
	"camera_id" text NOT NULL,
	"captured_at" timestamp with time zone NOT NULL,
	"content_hash" text NOT NULL,
	"storage_key" text NOT NULL,
	"media_type" text NOT NULL,
	"size_bytes" integer NOT NULL,
	"width" integer NOT NULL,
	"height" integer NOT NULL,
	"ingested_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "frames_seq_unique" UNIQUE("seq")
);
--> statement-breakpoint
CREATE TABLE "labels" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"task_id" uuid,
	"frame_id" uuid NOT NULL,
	"stream_id" text NOT NULL,
	"reviewer_id" uuid,
	"decision" text NOT NULL,
	"boxes" jsonb NOT NULL,
	"prediction_id" uuid,
	"policy_version" integer,
	"model_version" text,
	"source" text DEFAULT 'review' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "labels_task_id_unique" UNIQUE("task_id")
);
--> statement-breakpoint
CREATE TABLE "model_references" (
	"model_version" text NOT NULL,
	"idx" integer NOT NULL,
	"embedding" vector(128) NOT NULL,
	"num_detections" integer NOT NULL,
	"scores" jsonb NOT NULL
);
--> statement-breakpoint
CREATE TABLE "models" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"kind" text NOT NULL,
	"version" text NOT NULL,
	"artifact_key" text NOT NULL,
	"sha256" text NOT NULL,
	"metadata" jsonb NOT NULL,
	"metrics" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"training_snapshot" text,
	"parent_version" text,
	"status" text DEFAULT 'candidate' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "predictions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"frame_id" uuid NOT NULL,
	"model_version" text NOT NULL,
	"rank" integer NOT NULL,
	"class_name" text NOT NULL,
	"score" real NOT NULL,
	"x1" real NOT NULL,
	"y1" real NOT NULL,
	"x2" real NOT NULL,
	"y2" real NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "retrain_runs" (
	"id" text PRIMARY KEY NOT NULL,
	"trigger" text NOT NULL,
	"reason" text NOT NULL,
	"requested_by" text NOT NULL,
	"status" text DEFAULT 'running' NOT NULL,
	"snapshot_id" text,
	"candidate_version" text,
	"steps" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"metrics" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "retrain_triggers" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"dedupe_key" text NOT NULL,
	"reason" text NOT NULL,
	"stream_id" text,
	"report_id" uuid,
	"status" text DEFAULT 'pending' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "retrain_triggers_dedupe_key_unique" UNIQUE("dedupe_key")
);
--> statement-breakpoint
CREATE TABLE "review_tasks" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"dedupe_key" text NOT NULL,
	"stream_id" text NOT NULL,
	"camera_id" text NOT NULL,
	"frame_id" uuid NOT NULL,
	"prediction_id" uuid,
	"model_version" text NOT NULL,
	"class_name" text,
	"score" real,
	"reason" text NOT NULL,
	"policy_version" integer NOT NULL,
	"priority" integer DEFAULT 0 NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"lease_owner" uuid,
	"lease_expires_at" timestamp with time zone,
	"attempts" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"completed_at" timestamp with time zone,
	CONSTRAINT "review_tasks_dedupe_key_unique" UNIQUE("dedupe_key")
);
--> statement-breakpoint
CREATE TABLE "sampling_policies" (
	"id" serial PRIMARY KEY NOT NULL,
	"stream_id" text NOT NULL,
	"version" integer NOT NULL,
	"policy" jsonb NOT NULL,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "streams" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"scored_through_seq" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "users" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"role" text NOT NULL,
	"token_hash" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "users_name_unique" UNIQUE("name"),
	CONSTRAINT "users_token_hash_unique" UNIQUE("token_hash")
);
--> statement-breakpoint
ALTER TABLE "drift_boosts" ADD CONSTRAINT "drift_boosts_stream_id_streams_id_fk" FOREIGN KEY ("stream_id") REFERENCES "public"."streams"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "drift_settings" ADD CONSTRAINT "drift_settings_stream_id_streams_id_fk" FOREIGN KEY ("stream_id") REFERENCES "public"."streams"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "frame_scores" ADD CONSTRAINT "frame_scores_frame_id_frames_id_fk" FOREIGN KEY ("frame_id") REFERENCES "public"."frames"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "frames" ADD CONSTRAINT "frames_stream_id_streams_id_fk" FOREIGN KEY ("stream_id") REFERENCES "public"."streams"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "labels" ADD CONSTRAINT "labels_task_id_review_tasks_id_fk" FOREIGN KEY ("task_id") REFERENCES "public"."review_tasks"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "labels" ADD CONSTRAINT "labels_frame_id_frames_id_fk" FOREIGN KEY ("frame_id") REFERENCES "public"."frames"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "labels" ADD CONSTRAINT "labels_reviewer_id_users_id_fk" FOREIGN KEY ("reviewer_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "labels" ADD CONSTRAINT "labels_prediction_id_predictions_id_fk" FOREIGN KEY ("prediction_id") REFERENCES "public"."predictions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "predictions" ADD CONSTRAINT "predictions_frame_id_frames_id_fk" FOREIGN KEY ("frame_id") REFERENCES "public"."frames"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "retrain_triggers" ADD CONSTRAINT "retrain_triggers_report_id_drift_reports_id_fk" FOREIGN KEY ("report_id") REFERENCES "public"."drift_reports"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "review_tasks" ADD CONSTRAINT "review_tasks_stream_id_streams_id_fk" FOREIGN KEY ("stream_id") REFERENCES "public"."streams"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "review_tasks" ADD CONSTRAINT "review_tasks_frame_id_frames_id_fk" FOREIGN KEY ("frame_id") REFERENCES "public"."frames"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "review_tasks" ADD CONSTRAINT "review_tasks_prediction_id_predictions_id_fk" FOREIGN KEY ("prediction_id") REFERENCES "public"."predictions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "review_tasks" ADD CONSTRAINT "review_tasks_lease_owner_users_id_fk" FOREIGN KEY ("lease_owner") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sampling_policies" ADD CONSTRAINT "sampling_policies_stream_id_streams_id_fk" FOREIGN KEY ("stream_id") REFERENCES "public"."streams"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "deployments_kind_created_idx" ON "deployments" USING btree ("kind","created_at");--> statement-breakpoint
CREATE INDEX "drift_boosts_stream_expires_idx" ON "drift_boosts" USING btree ("stream_id","expires_at");--> statement-breakpoint
CREATE INDEX "drift_reports_segment_created_idx" ON "drift_reports" USING btree ("segment_type","segment_key","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "drift_reports_check_segment_uq" ON "drift_reports" USING btree ("check_id","segment_type","segment_key");--> statement-breakpoint
CREATE UNIQUE INDEX "frame_scores_pk" ON "frame_scores" USING btree ("frame_id","model_version");--> statement-breakpoint
CREATE INDEX "frame_scores_stream_scored_idx" ON "frame_scores" USING btree ("stream_id","scored_at");--> statement-breakpoint
CREATE UNIQUE INDEX "frames_stream_hash_uq" ON "frames" USING btree ("stream_id","content_hash");--> statement-breakpoint
CREATE INDEX "frames_stream_seq_idx" ON "frames" USING btree ("stream_id","seq");--> statement-breakpoint
CREATE INDEX "frames_stream_camera_captured_idx" ON "frames" USING btree ("stream_id","camera_id","captured_at");--> statement-breakpoint
CREATE INDEX "labels_stream_created_idx" ON "labels" USING btree ("stream_id","created_at");--> statement-breakpoint
CREATE INDEX "labels_frame_idx" ON "labels" USING btree ("frame_id");--> statement-breakpoint
CREATE UNIQUE INDEX "model_references_pk" ON "model_references" USING btree ("model_version","idx");--> statement-breakpoint
CREATE UNIQUE INDEX "models_kind_version_uq" ON "models" USING btree ("kind","version");--> statement-breakpoint
CREATE UNIQUE INDEX "models_one_production_uq" ON "models" USING btree ("kind") WHERE status = 'production';--> statement-breakpoint
CREATE UNIQUE INDEX "predictions_frame_model_rank_uq" ON "predictions" USING btree ("frame_id","model_version","rank");--> statement-breakpoint
CREATE INDEX "retrain_runs_created_idx" ON "retrain_runs" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "retrain_triggers_status_idx" ON "retrain_triggers" USING btree ("status","created_at");--> statement-breakpoint
CREATE INDEX "review_tasks_claim_idx" ON "review_tasks" USING btree ("status","priority","created_at");--> statement-breakpoint
CREATE INDEX "review_tasks_stream_status_idx" ON "review_tasks" USING btree ("stream_id","status","class_name");--> statement-breakpoint
CREATE INDEX "review_tasks_frame_idx" ON "review_tasks" USING btree ("frame_id");--> statement-breakpoint
CREATE UNIQUE INDEX "sampling_policies_stream_version_uq" ON "sampling_policies" USING btree ("stream_id","version");