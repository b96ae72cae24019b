"""stylelab.signals: the process's one STOP stays one object when a sweep job's function is pickled."""

import pickle
import sys

import pytest

from stylelab.signals import STOP


def asks_stop():
    return STOP


def test_stop_pickles_as_the_process_own_not_a_copy():
    assert pickle.loads(pickle.dumps(STOP)) is STOP
    # submitit pickles a job's task function by value (Hydra's decorator hides it from lookup by name), and
    # with it the globals the function reads: a copied STOP took the signals while the loop asked the real one
    cloudpickle = pytest.importorskip("cloudpickle")
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        copied = cloudpickle.loads(cloudpickle.dumps(asks_stop))
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert copied is not asks_stop and copied() is STOP
