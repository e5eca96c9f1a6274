"""hongbao-testbed: reproduce and measure the '10 billion red packets' experiment."""

__version__ = "0.1.0"
