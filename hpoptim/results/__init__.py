"""Reading what jobs left behind and writing the run's CSVs, report and best jobs."""
