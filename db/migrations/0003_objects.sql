CREATE TABLE "object_labels" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"prediction_id" uuid NOT NULL,
	"frame_id" uuid NOT NULL,
	"stream_id" text NOT NULL,
	"class_name" text NOT NULL,
	"polarity" text NOT NULL,
	"status" text NOT NULL,
	"provenance" text NOT NULL,
	"seed_prediction_id" uuid,
	"distance" real,
	"via" text,
	"created_by" uuid,
	"decided_by" uuid,
	"decided_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "object_vectors" (
	"prediction_id" uuid PRIMARY KEY NOT NULL,
	"frame_id" uuid NOT NULL,
	"stream_id" text NOT NULL,
	"camera_id" text NOT NULL,
	"model_version" text NOT NULL,
	"class_name" text NOT NULL,
	"score" real NOT NULL,
	"captured_at" timestamp with time zone NOT NULL,
	"label_class" text,
	"embedding" vector(64) NOT NULL
);
--> statement-breakpoint
ALTER TABLE "predictions" ADD COLUMN "track_id" uuid;--> statement-breakpoint
ALTER TABLE "object_labels" ADD CONSTRAINT "object_labels_prediction_id_predictions_id_fk" FOREIGN KEY ("prediction_id") REFERENCES "public"."predictions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "object_labels" ADD CONSTRAINT "object_labels_frame_id_frames_id_fk" FOREIGN KEY ("frame_id") REFERENCES "public"."frames"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "object_labels" ADD CONSTRAINT "object_labels_seed_prediction_id_predictions_id_fk" FOREIGN KEY ("seed_prediction_id") REFERENCES "public"."predictions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "object_labels" ADD CONSTRAINT "object_labels_created_by_users_id_fk" FOREIGN KEY ("created_by") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "object_labels" ADD CONSTRAINT "object_labels_decided_by_users_id_fk" FOREIGN KEY ("decided_by") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "object_vectors" ADD CONSTRAINT "object_vectors_prediction_id_predictions_id_fk" FOREIGN KEY ("prediction_id") REFERENCES "public"."predictions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "object_labels_prediction_class_uq" ON "object_labels" USING btree ("prediction_id","class_name");--> statement-breakpoint
CREATE INDEX "object_labels_class_status_idx" ON "object_labels" USING btree ("class_name","status","created_at");--> statement-breakpoint
CREATE INDEX "object_labels_frame_idx" ON "object_labels" USING btree ("frame_id");--> statement-breakpoint
CREATE INDEX "object_vectors_embedding_hnsw" ON "object_vectors" USING hnsw ("embedding" vector_cosine_ops);--> statement-breakpoint
CREATE INDEX "object_vectors_model_stream_captured_idx" ON "object_vectors" USING btree ("model_version","stream_id","captured_at");--> statement-breakpoint
CREATE INDEX "predictions_track_idx" ON "predictions" USING btree ("track_id");