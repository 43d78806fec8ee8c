// One video into its stream: split it into segments, then extract the segments' frames a few at a
// time, each in an activity of its own, so a killed worker costs one segment's retry and any
// worker on the ingest queue can take the next. Progress (segments done, frames taken) is in the
// Temporal UI's current details, the `videoProgress` query and the videos table.
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  setHandler,
} from '@temporalio/workflow';
import type { VideoActivities } from '../activities/video.ts';
import { videoProgressQuery, type VideoIngestInput, type VideoIngestProgress } from './shared.ts';

const { splitVideo, finishVideo } = proxyActivities<VideoActivities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '1 minute',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: ['VideoUnreadable', 'UnknownVideo'] },
});
// A segment heartbeats with every frame: a worker that dies is noticed within seconds and the
// segment goes to another; cancelling waits for the activity to stop writing frames.
const { extractSegment } = proxyActivities<VideoActivities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '10 seconds',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { maximumAttempts: 10, nonRetryableErrorTypes: ['VideoUnreadable', 'UnknownVideo'] },
});

export async function videoIngest(input: VideoIngestInput): Promise<VideoIngestProgress> {
  const progress: VideoIngestProgress = {
    videoId: input.videoId,
    phase: 'splitting',
    segmentsDone: 0,
    segmentsTotal: null,
    framesSampled: 0,
    framesStored: 0,
  };
  setHandler(videoProgressQuery, () => progress);
  const show = () =>
    setCurrentDetails(
      `**${progress.phase}**: ${progress.segmentsDone}/${progress.segmentsTotal ?? '?'} segments, ${progress.framesSampled} frames sampled, ${progress.framesStored} stored`,
    );
  show();
  try {
    const { segments } = await splitVideo({ videoId: input.videoId, segmentSeconds: input.segmentSeconds });
    progress.phase = 'extracting';
    progress.segmentsTotal = segments;
    show();
    // Lanes take the next segment until none is left. The first failure (or a cancel of the
    // workflow) cancels the other lanes, and every lane is waited for before the outcome is
    // written: a video marked cancelled or failed gets no frame after that.
    let next = 0;
    let failure: Error | undefined;
    const extraction = new CancellationScope();
    const lane = async () => {
      try {
        while (next < segments && failure === undefined) {
          const r = await extractSegment({ videoId: input.videoId, index: next++ });
          progress.segmentsDone++;
          progress.framesSampled += r.framesSampled;
          progress.framesStored += r.framesStored;
          show();
        }
      } catch (err) {
        failure ??= err as Error;
        extraction.cancel();
      }
    };
    await extraction.run(() => Promise.all(Array.from({ length: Math.max(1, Math.min(input.parallelSegments, segments)) }, lane)));
    if (failure !== undefined) throw failure;
    progress.phase = 'done';
    await finishVideo({ videoId: input.videoId, status: 'done' });
  } catch (err) {
    progress.phase = isCancellation(err) ? 'cancelled' : 'failed';
    const error = isCancellation(err)
      ? 'cancelled'
      : err instanceof ApplicationFailure || err instanceof Error
        ? ((err.cause as Error | undefined)?.message ?? err.message)
        : String(err);
    // Frames of finished segments stay, and those a failed segment stored before it failed
    // (frames are stored while a segment decodes); the row says how far it got and why it stopped.
    await CancellationScope.nonCancellable(() => finishVideo({ videoId: input.videoId, status: progress.phase as 'failed' | 'cancelled', error }));
    show();
    throw err;
  }
  show();
  return progress;
}
