"""The MLflow run helpers live at run time (`leadscore.scoring.mlflow_runs`: the daily score
job and the monitoring page start and annotate runs too, and nothing at run time imports
`leadscore.training`); training's registration imports them from here."""

from leadscore.scoring.mlflow_runs import LINK_TAG, log_to_project_run, start_run

__all__ = ["LINK_TAG", "log_to_project_run", "start_run"]
