-- Airflow's metadata database beside the warehouse (POSTGRES_DB=churn), as in the Celery test.
CREATE DATABASE airflow OWNER churn;
