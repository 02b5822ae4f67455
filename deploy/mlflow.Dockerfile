# The MLflow tracking server of deploy/compose.yaml: MLflow with PostgreSQL's driver, from the
# same requirement as leadscore's own dependency in pyproject.toml (a test keeps them equal), so
# the server and the clients come from the series the suite runs.
FROM python:3.11-slim
RUN pip install --no-cache-dir "mlflow>=3.17,<4" "psycopg[binary]>=3.1"
EXPOSE 5000
