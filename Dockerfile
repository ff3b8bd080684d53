# veille as a container: non-root, database and health file on the /data volume, read-only root OK.
#   docker build -t veille .
#   docker run -d --name veille -v veille-data:/data -v "$PWD/config.toml:/app/config.toml:ro" \
#     -e VEILLE_TELEGRAM_TOKEN=... --read-only --tmpfs /tmp veille
# Pinned to an exact release (patch version and Debian suite), so a rebuild gets the same base; to update,
# change the tag (or pin a digest: python:3.11.11-slim-bookworm@sha256:...).
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    VEILLE_CONFIG=/app/config.toml \
    VEILLE_DATABASE_URL=sqlite:////data/veille.db \
    PTB_TIMEDELTA=1

WORKDIR /app
COPY pyproject.toml setup.py README.md alembic.ini ./
COPY veille ./veille
COPY migrations ./migrations
COPY config.toml ./config.toml
COPY scripts/docker-entrypoint.sh /usr/local/bin/veille-entrypoint
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin veille \
    && mkdir -p /data && chown veille /data

USER 10001
VOLUME ["/data"]
# The dashboard, when [web] enabled = true (publish it on the host's loopback: -p 127.0.0.1:8080:8080).
EXPOSE 8080

# Fails when the daemon's process is gone, the scheduler has stalled (no heartbeat for 25 s) or database writes
# fail. The timeout covers the CLI's start-up (about 0.5 s on an idle host, several seconds on a busy one).
HEALTHCHECK --interval=30s --timeout=20s --start-period=60s --retries=3 \
    CMD ["veille", "health", "--config", "/app/config.toml"]

# Arguments pass through (scripts/docker-entrypoint.sh): `docker run veille --log-level debug` runs the daemon
# with debug logs, `docker run veille hits` runs that command. veille ends as PID 1 (exec) and gets SIGTERM.
ENTRYPOINT ["veille-entrypoint"]
