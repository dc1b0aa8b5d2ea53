"""The backend contract: both modules offer the same kernels with the same signatures.

The training loop, the estimator and the tests call a backend only through
these names, so a kernel missing from one backend, or taking its arguments in
another order, must fail here rather than in a user's run.
"""

from __future__ import annotations

import inspect

import pytest

from fastnn.backends import BACKENDS, KERNELS, get_backend


def test_every_backend_exports_every_kernel_of_the_contract():
    for name in BACKENDS:
        module = get_backend(name)
        missing = [k for k in KERNELS if not callable(getattr(module, k, None))]
        assert not missing, f"{name} lacks {missing}"
        assert module.NAME == name


@pytest.mark.parametrize("kernel", KERNELS)
def test_both_backends_give_each_kernel_the_same_signature(kernel):
    signatures = {name: inspect.signature(getattr(get_backend(name), kernel)) for name in BACKENDS}
    reference = signatures["numpy"]
    for name, sig in signatures.items():
        assert list(sig.parameters) == list(reference.parameters), f"{name}.{kernel}{sig} != numpy.{kernel}{reference}"
        for p, q in zip(sig.parameters.values(), reference.parameters.values()):
            assert (p.kind, p.default) == (q.kind, q.default), f"{name}.{kernel}: parameter {p.name}"


def test_the_contract_lists_what_the_training_loop_calls():
    """Every backend attribute that fastnn.model calls is in KERNELS (so the contract is not stale)."""
    import re

    from fastnn import model

    called = set(re.findall(r"backend\.(\w+)\(", inspect.getsource(model)))
    assert called and called <= set(KERNELS), called - set(KERNELS)
