"""Run report: a run directory (or InfluxDB) -> PNG charts, tables and report.html."""
