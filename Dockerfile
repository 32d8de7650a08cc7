# Kafka consumer-lag exporter. Build: docker build -t lag-exporter .
# Run:   docker run -p 9308:9308 lag-exporter --bootstrap-servers broker:9092
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY lag_exporter ./lag_exporter
RUN pip install . \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin exporter

USER 10001
EXPOSE 9308
HEALTHCHECK --interval=30s --timeout=3s CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:9308/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["lag-exporter"]
CMD ["run"]
