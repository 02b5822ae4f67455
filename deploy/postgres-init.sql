-- MLflow's tracking and registry next to the score history (the `leadscore` database).
CREATE DATABASE mlflow OWNER leadscore;
