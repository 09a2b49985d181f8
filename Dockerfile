# The images of the stack, one build target each (docker-compose.yml names them in `target:`).
# Build from the repo root, e.g.: docker build --target channel -t hypervib/channel .
# Targets: channel, device (also the one-shot client), edge_server, trainer.
# BASE_IMAGE: a Python 3.11 image (default python:3.11-slim). TORCH_INDEX_URL (edge_server,
# trainer): an extra pip index for a specific torch build (e.g. a CUDA one for
# docker-compose.gpu.yml); empty = whatever `pip install torch==<pin>` resolves to.
ARG BASE_IMAGE=python:3.11-slim

# --- every image: a virtual environment with the non-torch dependencies, pinned once in
# pyproject.toml [project.dependencies]; each image copies its own code after it
FROM ${BASE_IMAGE} AS python-deps
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH PYTHONPATH=/app
RUN python3 -m venv /opt/venv
WORKDIR /app
COPY pyproject.toml .
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && pip install --no-cache-dir -r requirements.txt

# --- the shared code under the torch-free services
FROM python-deps AS torch-free
COPY shared/ shared/

# --- channel proxy: AWGN between device and edge. No PyTorch.
FROM torch-free AS channel
COPY channel/ channel/
USER nobody
EXPOSE 50051
ENV CHANNEL_HOST=0.0.0.0 CHANNEL_PORT=50051
CMD ["python", "-m", "channel"]

# --- device: ONNX Runtime encoder + FastAPI front, and the client (client/). No PyTorch
# (DESIGN §3): checked once the code is in.
FROM torch-free AS device
COPY device/ device/
COPY client/ client/
RUN ! python -c "import torch" 2>/dev/null \
 && python -c "import sys, device.app, client.cli; assert 'torch' not in sys.modules"
USER nobody
EXPOSE 8080
ENV DEVICE_HOST=0.0.0.0 DEVICE_PORT=8080
CMD ["python", "-m", "device"]

# --- PyTorch (the torch pin of [project.optional-dependencies] torch) for edge and trainer
FROM python-deps AS torch
ARG TORCH_INDEX_URL=
RUN python -c "import tomllib; t = tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['torch']; print('\n'.join(r for r in t if r.startswith('torch==')))" > torch.txt \
 && pip install --no-cache-dir ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} -r torch.txt

# --- edge server: PyTorch decoder (shared.nn.runtime) behind gRPC.
FROM torch AS edge_server
COPY shared/ shared/
COPY edge_server/ edge_server/
USER nobody
EXPOSE 50052
ENV EDGE_HOST=0.0.0.0 EDGE_PORT=50052
CMD ["python", "-m", "edge_server"]

# --- trainer: PyTorch + ONNX export and the rest of the torch extra; writes
# artifacts/<model>/ (compose profile `trainer`).
FROM torch AS trainer
ARG TORCH_INDEX_URL=
ENV MPLBACKEND=Agg
RUN python -c "import tomllib; t = tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['torch']; print('\n'.join(t))" > torch-extra.txt \
 && pip install --no-cache-dir ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} -r torch-extra.txt
COPY shared/ shared/
COPY trainer/ trainer/
ENTRYPOINT ["python", "-m", "trainer"]
CMD ["train", "--quick", "--out", "/artifacts/quick", "--data-dir", "/data/fashion-mnist"]
