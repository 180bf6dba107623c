# softtargets as a container:  docker build -t softtargets .
#   docker run --rm -v "$PWD/runs:/app/runs" softtargets --dataset fashion_mnist --mu_algo graddiff --softtargets
# No command means `softtargets run`; `compare`, `list`, `report`, `sweep` ... work as on the host.
FROM python:3.11-slim
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Fashion-MNIST from Debian, so the image runs offline (the loader reads /usr/share/datasets/fashion-mnist).
# A data-only package with one upstream version: left unpinned so the line works on any Debian release.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends dataset-fashion-mnist \
 && rm -rf /var/lib/apt/lists/*

# Where the torch/torchvision wheels (the versions pinned in requirements.txt) come from. Empty: PyPI, the
# CUDA-enabled wheels (several GB, also run on CPU). https://download.pytorch.org/whl/cpu: CPU-only, far smaller.
ARG TORCH_INDEX_URL=""

WORKDIR /app
COPY requirements.txt /tmp/requirements.txt
# The pip cache lives in a build cache mount, not in the image: rebuilds do not download everything again.
RUN --mount=type=cache,target=/root/.cache/pip \
    if [ -n "$TORCH_INDEX_URL" ]; then \
      grep -E '^torch(vision)?==' /tmp/requirements.txt | xargs pip install --index-url "$TORCH_INDEX_URL"; \
    fi \
 && grep -vE '# (test|docs)$' /tmp/requirements.txt >/tmp/runtime-requirements.txt \
 && pip install -r /tmp/runtime-requirements.txt

COPY . /tmp/src
RUN pip install --no-cache-dir --no-deps /tmp/src \
 && rm -rf /tmp/src /tmp/*requirements.txt \
 && useradd --create-home --uid 1000 --user-group softtargets \
 && mkdir -p /app/data /app/runs /app/.cache \
 && chown -R softtargets:softtargets /app

# Relative defaults resolve under WORKDIR /app: data/ (datasets), runs/ (run folders), .cache/ (model cache).
# MPLCONFIGDIR: matplotlib needs a writable folder also under `--user UID:GID`, where HOME may not exist.
# ClearML reads /app/clearml.conf when one is mounted there (or CLEARML_* variables); its cache and offline
# session zips go to the cache volume.
ENV PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    CLEARML_CONFIG_FILE=/app/clearml.conf \
    CLEARML_CACHE_DIR=/app/.cache/clearml
# Numeric, so runtimes that require a non-root user (Kubernetes runAsNonRoot) can verify it.
USER 1000:1000
VOLUME ["/app/data", "/app/runs", "/app/.cache"]
ENTRYPOINT ["softtargets"]
CMD ["--help"]
