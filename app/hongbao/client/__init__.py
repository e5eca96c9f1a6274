"""The load-generating client: workers, binds, pacing loop, latency and control API."""
