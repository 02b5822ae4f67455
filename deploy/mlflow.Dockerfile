# The MLflow tracking server of deploy/compose.yaml: MLflow with PostgreSQL's driver, the
# version leadscore is tested with.
FROM python:3.11-slim
RUN pip install --no-cache-dir "mlflow==3.17.2" "psycopg[binary]>=3.1"
EXPOSE 5000
