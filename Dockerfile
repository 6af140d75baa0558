# A slim image that runs `twinhub serve` against the PostgreSQL named by TWINHUB_DATABASE_URL.
#   docker build -t twinhub .
#   docker run -p 8000:8000 -e TWINHUB_DATABASE_URL=postgresql://user:pass@db:5432/twinhub twinhub
# Several replicas share a Redis: add -e TWINHUB_REDIS_URL=redis://twinhub:pass@redis:6379/0 and the
# same -e TWINHUB_BUS_SECRET=<long random string> to each (docs/deployment.md; without it, it refuses to start).
# Migrations are applied at start-up (under an advisory lock, so several replicas may start at once).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    TWINHUB_HOST=0.0.0.0 TWINHUB_PORT=8000 TWINHUB_DATA_DIR=/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY protocol ./protocol
COPY storage ./storage
COPY realtime ./realtime
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /data --create-home twinhub

USER twinhub
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz').status != 200)"
# Without TWINHUB_DATABASE_URL it falls back to the embedded PostgreSQL in /data (a volume).
CMD ["twinhub", "serve"]
