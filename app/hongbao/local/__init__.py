"""Running nodes on this machine: local-run, phase marks, node subprocesses, daemon mode."""
