# The contractflow image: the worker and the operator commands, nothing else.
# Build: docker build -t contractflow .   Run: docker run contractflow --help
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY pyproject.toml README.md /tmp/contractflow/
COPY contracts /tmp/contractflow/contracts
COPY streams /tmp/contractflow/streams
COPY agents /tmp/contractflow/agents
COPY tables /tmp/contractflow/tables
COPY schemas /tmp/contractflow/schemas
COPY templates /tmp/contractflow/templates
# Runtime dependencies only: the embedded broker and the test tools stay out.
RUN pip install /tmp/contractflow && rm -rf /tmp/contractflow

# The artifact and data directories exist in the image, owned by the worker's
# user, so a named volume mounted on them starts out writable by it.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/contractflow \
        --shell /usr/sbin/nologin contractflow \
    && mkdir -p /var/lib/contractflow/artifacts /var/lib/contractflow/data \
    && chown -R contractflow:contractflow /var/lib/contractflow

USER contractflow
WORKDIR /var/lib/contractflow
ENV CONTRACTFLOW_ARTIFACT_DIR=/var/lib/contractflow/artifacts \
    CONTRACTFLOW_DATA_DIR=/var/lib/contractflow/data \
    CONTRACTFLOW_WEB_HOST=0.0.0.0

EXPOSE 6066
ENTRYPOINT ["contractflow"]
CMD ["worker"]
