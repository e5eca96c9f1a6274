"""What every node process shares: the worker loop, the worker pool, the control API."""
