"""Packing DictSummary states into one float64 table, and merging tables in rank order.

A state dict is what ``fusedmetrics.DictSummary.state_dict()`` returns:
``{'names': [str], 'moments': float64 (K, 3) [W, mean, M2], 'integer_weights': bool (K,)}``.

On the wire every rank sends the same-sized table, one row per name of the shared key registry
(identical on all ranks): ``[W, mean, M2, flags]`` with ``flags = PRESENT | INTEGER_WEIGHTS``.
A name this rank did not report has flags 0, which is how keys reported by only some ranks
merge exactly without any per-key collective.
"""
import numpy as np

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
    """Chan-Golub-LeVeque merge of two (K, 3+) tables, key by key, ``a`` first; returns (K, 3)."""
    out = merge_columns(a[:, 0], a[:, 1], a[:, 2], b[:, 0], b[:, 1], b[:, 2])
    return np.stack(out, axis=1)


def merge_columns(wa, ma, qa, wb, mb, qb):
    """The merge on columns (W, mean, M2 arrays of length K); returns new (W, mean, M2) arrays.

    The same arithmetic, in the same order, as ``fm::moments_merge`` in csrc/semantics/moments.h
    (W == 0 on either side returns the other side unchanged; both 0 keeps ``a``). numpy's
    element-wise +, -, *, / are correctly rounded IEEE operations with no FMA contraction, so every
    rank computes bit-identical results from the same inputs, whatever machine it runs on.
    Written with in-place operations and a fast path for "every key has weight on both sides"
    because per-call overhead, not arithmetic, is the cost for the usual few dozen keys.
    """
    total = wa + wb
    both = bool((wa > 0).all() and (wb > 0).all())
    if both:
        share_b = wb / total
    else:
        share_b = np.divide(wb, total, out=np.zeros_like(total), where=total != 0)
    delta = mb - ma
    mean = delta * share_b
    mean += ma                       # mean_a + delta * share_b
    delta *= delta
    delta *= wa
    delta *= share_b                 # ((delta * delta) * W_a) * share_b
    m2 = qa + qb
    m2 += delta                      # (M2_a + M2_b) + spread
    if not both:
        b_empty = wb == 0
        a_only = wa == 0
        a_only &= ~b_empty
        for merged, left, right in ((total, wa, wb), (mean, ma, mb), (m2, qa, qb)):
            np.copyto(merged, left, where=b_empty)
            np.copyto(merged, right, where=a_only)
    return total, mean, m2


def merge_tables(tables):
    """Merges a (P, K, 4) stack of rank tables in rank order into one (K, 4) table.

    Flags: present if present on any rank; integer weights only if every rank that has the key
    has integer weights (flags are 0, PRESENT, or PRESENT + INTEGER_WEIGHTS).
    """
    p, k, _ = np.shape(tables)
    cols = np.ascontiguousarray(np.transpose(tables, (0, 2, 1)), dtype=np.float64)  # (P, 4, K)
    flags = cols[:, 3]
    out = np.empty((COLUMNS, k), dtype=np.float64)
    if (flags == PRESENT + INTEGER_WEIGHTS).all():  # the usual case: every rank, integer weights
        out[3] = PRESENT + INTEGER_WEIGHTS
    else:
        present = (flags != 0).any(axis=0)
        integer = present & ~(flags == PRESENT).any(axis=0)
        out[3] = present * PRESENT + integer * INTEGER_WEIGHTS
    w, mean, m2 = cols[0, 0], cols[0, 1], cols[0, 2]
    for r in range(1, p):
        w, mean, m2 = merge_columns(w, mean, m2, cols[r, 0], cols[r, 1], cols[r, 2])
    out[0], out[1], out[2] = w, mean, m2
    return out.T


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
