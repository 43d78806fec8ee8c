// The Python training worker's activities (docs/contracts.md "Training worker"), as TypeScript
// types for proxyActivities. Keys are snake_case because the Python dataclasses are.
interface TrainInput {
  dataset_key: string;
  version: string;
  image_root_key?: string | null;
  parent_version?: string | null;
  epochs?: number;
  seed?: number;
  batch_size?: number | null;
  learning_rate?: number;
  max_images?: number | null;
  training_snapshot?: string;
  /** Training frames the detector's INT8 variant is calibrated on (default 500; 0: none). */
  int8_calibration_frames?: number;
}

export interface TrainResult {
  kind: 'detection' | 'box';
  version: string;
  artifact_key: string;
  checkpoint_key: string;
  metrics_key: string;
  epochs: number;
  num_images: number;
  final_loss: number;
  train_seconds: number;
  /** Epochs a retried attempt found finished (after a worker crash) and did not train again. */
  resumed_from_epoch: number;
  /** The detector's INT8 variant beside its model, if the trainer made one. */
  int8_artifact_key?: string | null;
}

interface EvaluateInput {
  model_key: string;
  dataset_key: string;
  image_root_key?: string | null;
  split?: string | null;
  score_threshold?: number;
}

export interface DetectorMetrics {
  map50: number;
  map50_95: number;
  per_class_ap50: Record<string, number>;
  precision: number;
  recall: number;
  num_images: number;
}

interface BoxMetrics {
  mean_iou_input: number;
  mean_iou_refined: number;
  iou_gain: number;
  num_objects: number;
}

/** Activity names the trainer registers; TypeScript workflows call them by these names. */
export interface TrainerActivities {
  train_detector(input: TrainInput): Promise<TrainResult>;
  train_box_model(input: TrainInput): Promise<TrainResult>;
  evaluate_detector(input: EvaluateInput): Promise<DetectorMetrics>;
  evaluate_box_model(input: EvaluateInput): Promise<BoxMetrics>;
}
