"""The ``hongbao`` command's entry point, also ``python -m hongbao``.

It imports nothing at module level on purpose. Each worker process that multiprocessing
starts first re-runs its parent's main script (the ``hongbao`` console script, which imports
this module) before it runs the worker. Whatever this module imported, the CLI with argparse
and every command's modules, would be loaded again in each of the ~100 workers of a
1M-connection run: about 1.5 MB of RSS per worker.
"""

from __future__ import annotations

import sys


def main() -> int:
    from hongbao.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
