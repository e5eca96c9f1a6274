"""The red-packet server: listener, workers, SETs, generators and control API."""
