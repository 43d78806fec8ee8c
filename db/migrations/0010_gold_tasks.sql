CREATE TABLE "gold_answers" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"task_id" uuid NOT NULL,
	"reviewer_id" uuid NOT NULL,
	"frame_id" uuid NOT NULL,
	"stream_id" text NOT NULL,
	"gold_label_id" uuid NOT NULL,
	"decision" text NOT NULL,
	"boxes" jsonb NOT NULL,
	"precision" real,
	"recall" real,
	"class_accuracy" real,
	"score" real NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "gold_answers_task_id_unique" UNIQUE("task_id")
);
--> statement-breakpoint
CREATE TABLE "gold_frames" (
	"frame_id" uuid PRIMARY KEY NOT NULL,
	"stream_id" text NOT NULL,
	"label_id" uuid NOT NULL,
	"marked_by" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "review_tasks" ADD COLUMN "gold_label_id" uuid;--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "queue_paused_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "queue_paused_reason" text;--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "gold_since" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "gold_answers" ADD CONSTRAINT "gold_answers_task_id_review_tasks_id_fk" FOREIGN KEY ("task_id") REFERENCES "public"."review_tasks"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "gold_answers" ADD CONSTRAINT "gold_answers_reviewer_id_users_id_fk" FOREIGN KEY ("reviewer_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "gold_frames" ADD CONSTRAINT "gold_frames_frame_id_frames_id_fk" FOREIGN KEY ("frame_id") REFERENCES "public"."frames"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "gold_frames" ADD CONSTRAINT "gold_frames_label_id_labels_id_fk" FOREIGN KEY ("label_id") REFERENCES "public"."labels"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "gold_frames" ADD CONSTRAINT "gold_frames_marked_by_users_id_fk" FOREIGN KEY ("marked_by") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "gold_answers_reviewer_created_idx" ON "gold_answers" USING btree ("reviewer_id","created_at");