# The training worker image. torch 2.13.0 from the package index is its CUDA build: the same
# image runs on CPU nodes and, with a GPU limit, on GPU nodes. Build from the repository root:
#   docker build -f deploy/trainer.Dockerfile -t dataengine-trainer:0.1.0 .
FROM python:3.11-slim
WORKDIR /app
COPY trainer/pyproject.toml trainer/pyproject.toml
COPY trainer/dataengine_trainer trainer/dataengine_trainer
RUN pip install --no-cache-dir torch==2.13.0 \
  && pip install --no-cache-dir ./trainer
USER nobody
EXPOSE 8081
CMD ["python", "-m", "dataengine_trainer", "worker"]
