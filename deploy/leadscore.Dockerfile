# The jobs of deploy/compose.yaml (`leadscore score`, `monitor`, `retrain`): the leadscore
# distribution with its PostgreSQL and Redis adapters. Built from the checkout's root.
FROM python:3.11-slim
COPY . /src
RUN pip install --no-cache-dir "/src[postgres,redis]" && rm -rf /src
WORKDIR /work
ENTRYPOINT []
