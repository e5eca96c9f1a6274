"""Per-second counters to line-protocol points, files and InfluxDB sinks."""
