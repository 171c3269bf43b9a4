"""kaffe's random number generator (Caffe's RNG, as a NumPy Generator).

Fillers, Dropout and data shuffling draw from one generator, so that
``set_random_seed(s)`` (or a solver's ``random_seed``) makes a run repeatable.
The streams are NumPy's, not Boost's mt19937: the same seed gives the same
kaffe run, not the same numbers as a C++ Caffe run.
"""
import numpy as np

_generator = np.random.default_rng()


def set_random_seed(seed):
    """Reseed kaffe's generator (a negative seed draws a fresh random one)."""
    global _generator
    _generator = np.random.default_rng(None if seed is None or seed < 0
                                       else int(seed))


def rng():
    """The generator every kaffe component draws from."""
    return _generator
