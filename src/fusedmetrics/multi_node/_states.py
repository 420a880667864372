"""Packing DictSummary states into one float64 table, and merging tables in rank order.

A state dict is what ``fusedmetrics.DictSummary.state_dict()`` returns:
``{'names': [str], 'moments': float64 (K, 3) [W, mean, M2], 'integer_weights': bool (K,)}``.

On the wire every rank sends the same-sized table, one row per name of the shared key registry
(identical on all ranks): ``[W, mean, M2, flags]`` with ``flags = PRESENT | INTEGER_WEIGHTS``.
A name this rank did not report has flags 0, which is how keys reported by only some ranks
merge exactly without any per-key collective.
"""
import numpy as np

from .._core import merge_moment_stack

PRESENT = 1.0
INTEGER_WEIGHTS = 2.0
COLUMNS = 4


def check_state_dict(sd, where):
    """Validates a local state dict; returns (names, moments (K,3) float64, integer_weights (K,) bool)."""
    try:
        names = list(sd["names"])
        moments = np.asarray(sd["moments"], dtype=np.float64)
        integer = np.asarray(sd["integer_weights"], dtype=bool)
    except (KeyError, TypeError) as exc:
        raise TypeError(f"{where}: state_dict() must have 'names', 'moments', 'integer_weights'; "
                        f"got {type(sd).__name__}") from exc
    k = len(names)
    if moments.shape != (k, 3) or integer.shape != (k,):
        raise ValueError(f"{where}: state_dict() has {k} names but moments of shape {moments.shape} "
                         f"and integer_weights of shape {integer.shape}; expected ({k}, 3) and ({k},)")
    if not all(isinstance(n, str) for n in names):
        raise TypeError(f"{where}: state_dict() names must be str")
    return names, moments, integer


def pack(names, moments, integer, index, size):
    """Scatters the local rows into a (size, 4) table in registry order (``index``: name -> row)."""
    rows = np.fromiter((index[n] for n in names), dtype=np.intp, count=len(names))
    return pack_rows(rows, moments, integer, size)


def pack_rows(rows, moments, integer, size):
    """Like ``pack`` with the registry rows of the local names already looked up."""
    table = np.zeros((size, COLUMNS), dtype=np.float64)
    if len(rows):
        table[rows, :3] = moments
        table[rows, 3] = PRESENT + INTEGER_WEIGHTS * integer
    return table


def merge_pair(a, b):
    """Chan merge of two (K, 3+) tables, key by key, ``a`` first; returns (K, 3)."""
    return merge_moment_stack(np.stack([a[:, :3], b[:, :3]]))


def merge_tables(tables):
    """Merges a (P, K, 4) stack of rank tables in rank order into one (K, 4) table.

    The moments are merged by ``fusedmetrics._core.merge_moment_stack``, i.e. by
    ``fm::moments_merge`` (csrc/semantics/moments.h), the very code behind
    ``DictSummary.merge``: one definition of the Chan merge, the same bits as merging the
    ranks' DictSummaries one after the other, and identical on every rank (same binary).
    Flags: present if present on any rank; integer weights only if every rank that has the key
    has integer weights (flags are 0, PRESENT, or PRESENT + INTEGER_WEIGHTS).
    """
    tables = np.asarray(tables, dtype=np.float64)
    p, k, _ = tables.shape
    out = np.empty((k, COLUMNS), dtype=np.float64)
    out[:, :3] = merge_moment_stack(tables)
    flags = tables[:, :, 3]
    if (flags == PRESENT + INTEGER_WEIGHTS).all():  # the usual case: every rank, integer weights
        out[:, 3] = PRESENT + INTEGER_WEIGHTS
    else:
        present = (flags != 0).any(axis=0)
        integer = present & ~(flags == PRESENT).any(axis=0)
        out[:, 3] = present * PRESENT + integer * INTEGER_WEIGHTS
    return out


def unpack(table, registry):
    """Turns a merged (K, 4) table back into a state dict with the present keys, registry order."""
    flags = table[:, 3]
    if (flags == PRESENT + INTEGER_WEIGHTS).all():  # the usual case: nothing to filter
        return {"names": list(registry), "moments": np.ascontiguousarray(table[:, :3]),
                "integer_weights": np.ones(len(registry), dtype=bool)}
    present = np.flatnonzero(flags != 0)
    return {
        "names": [registry[i] for i in present],
        "moments": np.ascontiguousarray(table[present, :3]),
        "integer_weights": flags[present] == PRESENT + INTEGER_WEIGHTS,
    }
