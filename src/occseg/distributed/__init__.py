"""Running occseg on several processes and machines with ``torch.distributed`` (launched by ``torchrun``).

* :mod:`occseg.distributed.context`: detecting torchrun, starting and stopping the process group, the rank context;
* :mod:`occseg.distributed.collectives`: the collective operations the statistics use (no-ops in one process);
* :mod:`occseg.distributed.predictions`: one predictions file from the ranks' shards, byte-identical to one process.
"""
