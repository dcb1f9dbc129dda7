"""`trajectory.py` as one of several JAX processes (multi-host, here two local processes).

Env: XVAE_TEST_COORDINATOR (host:port), XVAE_TEST_PROCESSES, XVAE_TEST_PROCESS_ID.
CPU collectives go through gloo (`jax_cpu_collectives_implementation`).
"""

from __future__ import annotations

import os
import sys

import jax

jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.distributed.initialize(coordinator_address=os.environ["XVAE_TEST_COORDINATOR"],
                           num_processes=int(os.environ["XVAE_TEST_PROCESSES"]),
                           process_id=int(os.environ["XVAE_TEST_PROCESS_ID"]))

import trajectory  # noqa: E402  (after initialize, as a multi-host script must)

if __name__ == "__main__":
    sys.exit(trajectory.main(sys.argv[1:]))
