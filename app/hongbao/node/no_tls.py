"""Imported first by the workers' fork server: marks ``ssl`` absent, so no worker loads TLS.

Workers speak plain TCP and hand their points to their node through files: none of them
needs TLS. But asyncio imports ``ssl`` whenever it can, and ``ssl`` costs a process about
4.5 MB of RSS (OpenSSL's set-up and the module's enums). Every worker carries the fork
server's memory: fork copies the page tables of its anonymous memory, so each worker's RSS
counts those pages again. At 1,000,000 connections that is 54 server and 51 client workers.

With ``ssl`` marked absent, asyncio goes without it, as on a Python built without OpenSSL.
uvloop imports ``ssl`` unconditionally, so the workers run asyncio's own event loop. It
watches few descriptors: the connections are on the worker's own epoll
(``epoll_transport.py``). ``bench/memory_per_connection.py``: a server worker's base fell
from 20.7 to 17.4 MB RSS, a client worker's from 22.2 to 18.5 MB, and each node's fork
server from 25 to 20 MB. The CPU per request stayed within the noise
(``bench/cpu_per_request.py``).
"""

import sys

sys.modules["ssl"] = None  # type: ignore[assignment]  # import ssl now raises ImportError
