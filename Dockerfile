# moodspace service image: CPU-only torch, non-root user, health check. Build: docker build -t moodspace .
FROM python:3.11-slim-bookworm

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    MOODSPACE_DATA_DIR=/data

RUN apt-get update \
    && apt-get install -y --no-install-recommends libsndfile1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# The CPU build of torch first (the default index would pull a CUDA build of several GB).
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY pyproject.toml README.md alembic.ini ./
COPY models ./models
COPY training ./training
COPY app ./app
COPY moodspace ./moodspace
COPY migrations ./migrations
RUN pip install -e .
# The pretrained weights of the musicnn-msd front end; its own pins do not install on Python 3.11.
RUN pip install --no-deps musicnn==0.1.0

RUN useradd --create-home --uid 10001 moodspace \
    && mkdir -p /data \
    && chown moodspace /data
USER moodspace
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"
CMD ["moodspace", "serve", "--host", "0.0.0.0", "--port", "8000"]
