# The Telegram bot, ready to serve: LiteRT and the shipped model, no TensorFlow (that is the
# `train` extra), PostgreSQL support for replicas, a non-root user and a health check.
#   docker build -t mnist-bot .
#   docker run -e TELEGRAM_BOT_TOKEN=... -v mnist-bot-data:/data mnist-bot            # long polling
#   docker compose up -d                                                               # replicas: compose.yaml
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/bot bot \
    && mkdir /data && chown bot:bot /data

WORKDIR /app
# Dependencies first, in their own layer: a code change then rebuilds only the last layers.
COPY pyproject.toml README.md ./
COPY mnist_bot/ mnist_bot/
COPY widgets/ widgets/
# Serving needs no TensorFlow: the build fails if a dependency pulled it in.
RUN pip install ".[postgres]" \
    && python -c "import importlib.util as u, sys; sys.exit(u.find_spec('tensorflow') is not None)"

# The model is baked in: the image serves the exact files it was built with.
COPY models/cnn.tflite models/cnn.json /app/models/
COPY deploy/healthcheck.py /app/deploy/healthcheck.py

ENV MNIST_BOT_MODEL=/app/models/cnn.tflite \
    MNIST_BOT_DB=/data/feedback.db
VOLUME /data
USER bot
EXPOSE 8443

# Webhook mode: the webhook server must answer HTTP. Long polling: the bot process is alive.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "/app/deploy/healthcheck.py"]

# Exec form: the bot is PID 1 and gets SIGTERM from `docker stop` directly (it stops cleanly).
ENTRYPOINT ["mnist-bot"]
CMD ["bot"]
