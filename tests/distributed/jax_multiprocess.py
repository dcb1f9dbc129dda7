"""`trajectory.py` as one of several JAX processes (multi-host, here two local processes).

Env: XVAE_TEST_COORDINATOR (host:port), XVAE_TEST_PROCESSES, XVAE_TEST_PROCESS_ID.
CPU collectives go through gloo (`jax_cpu_collectives_implementation`).
"""

from __future__ import annotations

import os
import sys

import jax

jax.config.update("jax_cpu_collectives_implementation", "gloo")
if os.environ.get("XVAE_TEST_RECOVERABLE"):
    jax.config.update("jax_enable_recoverability", True)
jax.distributed.initialize(coordinator_address=os.environ["XVAE_TEST_COORDINATOR"],
                           num_processes=int(os.environ["XVAE_TEST_PROCESSES"]),
                           process_id=int(os.environ["XVAE_TEST_PROCESS_ID"]),
                           # A dead or silent peer is declared lost after this many seconds
                           # (JAX's default: 100), and exit waits at most as long for the others.
                           heartbeat_timeout_seconds=int(os.environ.get("XVAE_TEST_HEARTBEAT", "100")),
                           shutdown_timeout_seconds=int(os.environ.get("XVAE_TEST_HEARTBEAT", "300")))

import trajectory  # noqa: E402  (after initialize, as a multi-host script must)

if __name__ == "__main__":
    sys.exit(trajectory.main(sys.argv[1:]))
