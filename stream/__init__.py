"""The CRM's events as they happen: each lead's state in an online store (a port with
SQLite, Redis and PostgreSQL adapters), every event rescoring its lead with the endpoint's
scorer and handing hot leads off through the batch's outbox and webhook."""
