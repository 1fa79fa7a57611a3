# boom-tasks: one image for the bridge and the Dramatiq workers (see docker-compose.yaml).
#   docker build -t boom-tasks .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # A non-editable install cannot find config/ from the package's own location:
    # name the file explicitly. BOOM_<SECTION>__<KEY> variables override it.
    BOOM_CONFIG=/app/config/default.yaml

WORKDIR /app
# Only what the package needs: a plain `COPY . .` would also copy .venv/ and .local/.
COPY pyproject.toml README.md ./
COPY boom_tasks ./boom_tasks
COPY actors ./actors
COPY config ./config
RUN pip install . \
    && useradd --create-home --uid 1000 boom
USER boom

# Each service of docker-compose.yaml gives its own command.
CMD ["boom-bridge", "--help"]
