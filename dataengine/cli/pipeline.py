"""`run` and `serve`: pipelines on Prefect (the flows live in `flows/`)."""
