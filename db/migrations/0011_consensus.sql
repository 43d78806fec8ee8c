CREATE TABLE "consensus_answers" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"task_id" uuid NOT NULL,
	"reviewer_id" uuid NOT NULL,
	"decision" text NOT NULL,
	"boxes" jsonb NOT NULL,
	"agreement" real,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "consensus_results" (
	"task_id" uuid PRIMARY KEY NOT NULL,
	"frame_id" uuid NOT NULL,
	"stream_id" text NOT NULL,
	"merged" jsonb NOT NULL,
	"agreement" real NOT NULL,
	"by_class" jsonb NOT NULL,
	"label_id" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "review_tasks" ADD COLUMN "reviews_needed" integer DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE "review_tasks" ADD COLUMN "adjudication" text;--> statement-breakpoint
ALTER TABLE "consensus_answers" ADD CONSTRAINT "consensus_answers_task_id_review_tasks_id_fk" FOREIGN KEY ("task_id") REFERENCES "public"."review_tasks"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "consensus_answers" ADD CONSTRAINT "consensus_answers_reviewer_id_users_id_fk" FOREIGN KEY ("reviewer_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "consensus_results" ADD CONSTRAINT "consensus_results_task_id_review_tasks_id_fk" FOREIGN KEY ("task_id") REFERENCES "public"."review_tasks"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "consensus_answers_task_reviewer_idx" ON "consensus_answers" USING btree ("task_id","reviewer_id");--> statement-breakpoint
CREATE INDEX "consensus_answers_reviewer_idx" ON "consensus_answers" USING btree ("reviewer_id");--> statement-breakpoint
CREATE INDEX "consensus_results_stream_created_idx" ON "consensus_results" USING btree ("stream_id","created_at");