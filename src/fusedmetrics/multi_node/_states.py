"""Packing DictSummary states into one float64 table, and merging tables in rank order.

The state dicts (checked by ``fusedmetrics._snapshot.check_state_dict``) are what
``fusedmetrics.DictSummary.state_dict()`` returns.

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


def pack_rows(rows, moments, integer, size):
    """Scatters the local rows into a (size, 4) table at the registry rows ``rows`` of the local names."""
    table = np.zeros((size, COLUMNS), dtype=np.float64)
    if len(rows):
        table[rows, :3] = moments
        table[rows, 3] = PRESENT + INTEGER_WEIGHTS * integer
    return table


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
