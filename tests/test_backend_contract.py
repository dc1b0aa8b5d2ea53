"""The backend contract: both modules offer the same kernels and thread controls, with the same signatures.

The training loop, the estimator and the tests call a backend only through
these names, so a kernel missing from one backend, or taking its arguments in
another order, must fail here rather than in a user's run.
"""

from __future__ import annotations

import inspect

import pytest

from fastnn.backends import BACKENDS, CONTROLS, KERNELS, get_backend
from fastnn.errors import FastnnError


def test_every_backend_exports_every_kernel_of_the_contract():
    for name in BACKENDS:
        module = get_backend(name)
        missing = [k for k in KERNELS + CONTROLS if not callable(getattr(module, k, None))]
        assert not missing, f"{name} lacks {missing}"
        assert name == module.NAME


@pytest.mark.parametrize("kernel", KERNELS + CONTROLS)
def test_both_backends_give_each_kernel_the_same_signature(kernel):
    signatures = {name: inspect.signature(getattr(get_backend(name), kernel)) for name in BACKENDS}
    reference = signatures["numpy"]
    for name, sig in signatures.items():
        assert list(sig.parameters) == list(reference.parameters), f"{name}.{kernel}{sig} != numpy.{kernel}{reference}"
        for p, q in zip(sig.parameters.values(), reference.parameters.values()):
            assert (p.kind, p.default) == (q.kind, q.default), f"{name}.{kernel}: parameter {p.name}"


def test_the_contract_lists_what_the_training_loop_and_the_network_call():
    """Every backend attribute that fastnn.training and fastnn.network call is in the contract."""
    import re

    from fastnn import network, training

    called = set()
    for module in (training, network):
        called |= set(re.findall(r"kernels\.(\w+)\(", inspect.getsource(module)))
    assert {"train_steps", "permutation", "augment", "make_workspace", "predict"} <= called
    assert called <= set(KERNELS + CONTROLS), called - set(KERNELS + CONTROLS)


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("threads", [0, -1, 10**6, 1.5, True])
def test_both_backends_refuse_a_bad_thread_count_with_the_same_error(name, threads):
    with pytest.raises(FastnnError, match=rf"^threads must be between 1 and \d+ \(.*\), got {threads}$"):
        get_backend(name).set_threads(threads)


@pytest.mark.parametrize("name", BACKENDS)
def test_thread_info_reports_what_set_threads_set(name, restore_numba_threads):
    from threadpoolctl import threadpool_limits

    backend = get_backend(name)
    with threadpool_limits(limits=None, user_api="blas"):  # puts BLAS's threads back on exit
        backend.set_threads(1)
        info = backend.thread_info()
    assert info["threads"] == 1
    assert ("threading_layer" in info) == (name == "numba")
