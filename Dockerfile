# The cxstream worker image (docker-compose.yml builds it as service "worker").
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY cxstream ./cxstream
RUN pip install --no-cache-dir . && useradd --create-home cx && mkdir -p /data && chown cx /data
USER cx
ENV CXSTREAM_WEB_HOST=0.0.0.0 \
    CXSTREAM_DATA_DIR=/data
EXPOSE 6066
CMD ["cxstream", "worker"]
