"""Jobs in forked processes (training.parallel.map_forked), as the ensemble and the experiments run them."""
import os

import numpy as np
import pytest
import torch

from training.parallel import map_forked


def test_results_come_back_in_job_order_from_other_processes_reading_the_parents_arrays():
    big = np.arange(1_000_000, dtype=np.float64)  # read through the closure, never pickled

    def job(k: int):
        return k, os.getpid(), float(big[k * 1000])
    out = list(map_forked(job, [5, 1, 4, 2, 3], processes=2))
    assert [k for k, _, _ in out] == [5, 1, 4, 2, 3]
    assert [v for _, _, v in out] == [5000.0, 1000.0, 4000.0, 2000.0, 3000.0]
    assert os.getpid() not in {pid for _, pid, _ in out}


def test_tensors_come_back_by_value_after_their_process_has_exited():
    def job(seed: int):
        torch.manual_seed(seed)
        return torch.nn.Linear(3, 2).state_dict()
    out = list(map_forked(job, [1, 2], processes=2))
    torch.manual_seed(1)
    assert torch.equal(out[0]["weight"], torch.nn.Linear(3, 2).weight.detach())


def test_one_process_runs_here():
    assert list(map_forked(lambda k: (k, os.getpid()), [1, 2], processes=1)) == [(1, os.getpid()), (2, os.getpid())]


def test_a_failing_job_raises_with_its_traceback():
    def job(k: int):
        if k == 2:
            raise ValueError("bad job 2")
        return k
    with pytest.raises(RuntimeError, match="bad job 2"):
        list(map_forked(job, [1, 2, 3], processes=2))
