"""The fitted model at run time: `LeadScorer`, grades, reasons and the MLflow pyfunc; one
prediction path for the endpoint, batch scoring and MLflow. Imports `crm`, `features`, `rules`."""
