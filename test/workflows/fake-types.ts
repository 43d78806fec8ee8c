export { deployModelUpdate, pauseSignal, resumeSignal, setPolicyUpdate, statusQuery } from '../../workflows/shared.ts';
export type { ScoreBatchInput as ScoreBatchCall } from '../../activities/scoring.ts';
