"""The one-machine lab: every host a network namespace on a bridge, each with its own sshd."""
