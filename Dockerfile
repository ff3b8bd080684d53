# veille as a container: non-root, database and health file on the /data volume, read-only root OK.
#   docker build -t veille .
#   docker run -d --name veille -v veille-data:/data -v "$PWD/config.toml:/app/config.toml:ro" \
#     -e VEILLE_TELEGRAM_TOKEN=... --read-only --tmpfs /tmp veille
FROM python:3.11-slim

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
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin veille \
    && mkdir -p /data && chown veille /data

USER veille
VOLUME ["/data"]
# The dashboard, when [web] enabled = true (publish it on the host's loopback: -p 127.0.0.1:8080:8080).
EXPOSE 8080

# Fails when the scheduler has stalled (no heartbeat for 25 s) or database writes fail.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["veille", "health", "--config", "/app/config.toml"]

# Exec form: veille is PID 1 and receives SIGTERM directly; it drains within 8 s (Docker waits 10 s).
ENTRYPOINT ["sh", "-c", "veille db upgrade && exec veille run"]
