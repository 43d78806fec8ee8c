"""Training side of the data engine: scene generator, detector and box model, COCO evaluation,
ONNX export, and the Temporal worker on task queue `training`."""
