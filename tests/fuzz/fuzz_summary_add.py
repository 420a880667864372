"""Fuzz target: DictSummary.add.

A few add() calls with random dicts: values and (value, weight) tuples of Python
floats (NaN, inf, huge, subnormal), ints beyond int64 and beyond float64, bools,
NumPy scalars, 0-d and 1-d arrays, complex numbers, strings, Fractions, None.

Property, after every add(): either it succeeded and the state holds, per key in
first-seen order, the statistics of an exact fractions.Fraction reference over the
items Chainer's rules accept (non-scalar values skipped, zero weights skipped); or
it raised TypeError/ValueError/OverflowError (IndexError for a tuple shorter than 2,
as Chainer) when the reference says some item is invalid, and state_dict() is
unchanged. Tolerance: |mean - ref| <= 1e-9 * max|x| + 1e-300 and
|M2/W - ref var| <= 1e-9 * s * (s + max|x|) + 1e-300 with s = max|x - ref mean|
(float64 rounds the mean at ~1e-16 max|x|, and a few Welford steps add ~1e-15 of
these); W within 1e-12 relative. A key with a
non-finite value must report a non-finite mean.

Where the exact answer is not a float64 the documented results are accepted, not a
finite one: a total weight beyond 1.8e308 must raise OverflowError (or, when it
rounds down to the largest float64, be that float); an exact M2 beyond 1.8e308 with a
finite mean must give M2 = +inf (std inf), as csrc/semantics/moments.h says; an M2
below the normal range may be off by its rounding, a few 2**-1074 per item. A mean
is an average of finite values, so it is always representable and always checked.
"""
import fractions
import math
import sys

import numpy as np

import _harness
from _harness import Finding, atheris

with atheris.instrument_imports(include=["fusedmetrics"]):
    import fusedmetrics as fm

# The defects once listed here (dynamic range, weight overflow, huge intermediates)
# are fixed; every failure is now a finding.
KNOWN = {}
KEYS = ["a", "b", "c", "d"]
FLOAT_MAX = fractions.Fraction(sys.float_info.max)


def consume_float(fdp):
    return fdp.ConsumeFloat() if fdp.ConsumeBool() else float(fdp.ConsumeIntInRange(-3, 3))


@atheris.instrument_func  # add() is one C++ call: guide by which cases were built and checked
def scalar(fdp):
    """A value or weight of any kind the API may see."""
    kind = fdp.ConsumeIntInRange(0, 17)
    if kind <= 4:
        return consume_float(fdp)
    return [
        lambda: fdp.ConsumeIntInRange(-5, 5),
        lambda: fdp.ConsumeIntInRange(-2 ** 80, 2 ** 80),       # beyond int64
        lambda: 2 ** 1100 * fdp.ConsumeIntInRange(-1, 1),        # beyond float64
        lambda: fdp.ConsumeBool(),
        lambda: np.float16(consume_float(fdp)),
        lambda: np.float32(consume_float(fdp)),
        lambda: np.int64(fdp.ConsumeIntInRange(-2 ** 63, 2 ** 63 - 1)),
        lambda: np.uint64(fdp.ConsumeIntInRange(0, 2 ** 64 - 1)),
        lambda: np.array(consume_float(fdp), dtype=np.float32 if fdp.ConsumeBool() else np.float64),
        lambda: np.array([consume_float(fdp)] * fdp.ConsumeIntInRange(0, 2)),  # not a scalar
        lambda: [complex(1, 1), np.complex64(1), np.array(1j), "1.5", b"1", None][fdp.ConsumeIntInRange(0, 5)],
        lambda: fractions.Fraction(fdp.ConsumeIntInRange(-99, 99), fdp.ConsumeIntInRange(1, 99)),
        lambda: np.bool_(fdp.ConsumeBool()),
    ][kind - 5]()


@atheris.instrument_func
def make_case(fdp):
    batches = []
    for _ in range(fdp.ConsumeIntInRange(1, 4)):
        batch = {}
        for _ in range(fdp.ConsumeIntInRange(0, 4)):
            key = KEYS[fdp.ConsumeIntInRange(0, len(KEYS) - 1)]
            shape = fdp.ConsumeIntInRange(0, 9)
            if shape <= 3:
                batch[key] = scalar(fdp)
            elif shape <= 8:
                batch[key] = (scalar(fdp), scalar(fdp))
            else:
                batch[key] = tuple(scalar(fdp) for _ in range(fdp.ConsumeIntInRange(0, 3)))
        batches.append(batch)
    return batches


# -- the reference: Chainer's acceptance rules, then exact arithmetic --------------
@atheris.instrument_func
def classify(x):
    """('skip'|'bad'|'ok', Fraction or None (non-finite), integer-typed)."""
    if isinstance(x, np.ndarray):
        if x.ndim != 0:
            return "skip", None, False
        x = x[()]
    if isinstance(x, (str, bytes, complex, np.complexfloating)):
        return "bad", None, False
    if isinstance(x, (bool, np.bool_)):
        return "ok", fractions.Fraction(int(x)), True
    if isinstance(x, (int, np.integer)):
        try:  # read as float64, as documented: 2**53 + 1 is 2**53
            return "ok", fractions.Fraction(float(x)), True
        except OverflowError:
            return "bad", None, True
    if isinstance(x, (float, np.floating, fractions.Fraction)):
        f = float(x)
        return "ok", fractions.Fraction(f) if math.isfinite(f) else None, False
    return "skip", None, False  # None and other non-scalars


@atheris.instrument_func
def expected_outcome(batch, stats):
    """(error or None, new stats) for one add(): stats maps key -> list of (x, w)."""
    new = {k: list(v) for k, v in stats.items()}
    for key, item in batch.items():
        value, weight = item, True  # a plain value has weight 1 (integer)
        if isinstance(item, tuple):
            if len(item) < 2:
                return "IndexError", stats
            value, weight = item[0], item[1]
        w_kind, w, w_int = classify(weight)
        if w_kind == "skip":
            return "ValueError", stats
        v_kind, x, _ = classify(value)
        if v_kind == "skip":
            continue
        if v_kind == "bad" or w_kind == "bad":
            return "TypeError", stats
        if w is None or w < 0:
            return "ValueError", stats
        if w == 0:
            continue
        new.setdefault(key, []).append((x, w, w_int))
    return None, new


def snapshot(summary):
    sd = summary.state_dict()
    return list(sd["names"]), np.array(sd["moments"]), np.array(sd["integer_weights"])


def same(a, b):
    return a[0] == b[0] and np.array_equal(a[1], b[1], equal_nan=True) and np.array_equal(a[2], b[2])


def show(fr):
    """A Fraction for a message (it may be beyond float64)."""
    return repr(float(fr)) if abs(fr) <= FLOAT_MAX else f"~{'-' if fr < 0 else ''}2**{fr.numerator.bit_length() - fr.denominator.bit_length()}"


@atheris.instrument_func
def check_stats(summary, stats):
    names, moments, integer = snapshot(summary)
    if names != list(stats):
        raise Finding(f"keys {names} != expected {list(stats)}")
    for (w, mean, m2), is_int, key in zip(moments, integer, names):
        items = stats[key]
        total = sum(it[1] for it in items)
        # A sum of weights rounds; beyond the largest float64 by less than its last bit it
        # rounds down to it, which add() accepts (OverflowError is for sums that round to inf).
        if not math.isfinite(w) or abs(fractions.Fraction(w) - total) > total / 10 ** 12:
            raise Finding(f"{key}: W={w} expected {show(total)}")
        if bool(is_int) != all(it[2] for it in items):
            raise Finding(f"{key}: integer_weights={bool(is_int)} but the weights were {[it[1] for it in items]}")
        if any(it[0] is None for it in items):
            if math.isfinite(mean):
                raise Finding(f"{key}: a non-finite value was added but the mean is {mean}")
            if not math.isnan(m2):
                raise Finding(f"{key}: non-finite mean {mean} but M2 {m2} (documented: NaN, as numpy's var)")
            continue
        ref_mean = sum(x * v for x, v, _ in items) / total
        scale = max(abs(x) for x, _, _ in items)
        spread = max(abs(x - ref_mean) for x, _, _ in items)
        ref_var = sum(v * (x - ref_mean) ** 2 for x, v, _ in items) / total
        tol_mean = scale * fractions.Fraction(1, 10 ** 9) + fractions.Fraction(1e-300)
        if not (math.isfinite(mean) and abs(fractions.Fraction(mean) - ref_mean) <= tol_mean):
            weights = [float(v) for _, v, _ in items]
            raise Finding(f"{key}: mean {mean!r} expected {show(ref_mean)} (weights {weights})")
        # The mean itself is rounded at ~eps * max|x|, so (x - mean) carries that error too.
        # M2 is a float64 too: below 2**-1022 it rounds to multiples of 2**-1074 (a few per step),
        # which M2/W magnifies when W is tiny; that much is representation, not a defect.
        tol_var = (spread * (spread + scale) * fractions.Fraction(1, 10 ** 9) + fractions.Fraction(1e-300)
                   + 4 * len(items) * fractions.Fraction(2) ** -1074 / total)
        ref_m2 = ref_var * total
        if m2 == math.inf:
            # Documented for an M2 beyond float64; allowed within the tolerance of that edge.
            if ref_m2 + tol_var * total < FLOAT_MAX:
                raise Finding(f"{key}: M2 inf but the exact M2 {show(ref_m2)} is a float64")
        elif not (m2 >= 0) or abs(fractions.Fraction(m2) / fractions.Fraction(w) - ref_var) > tol_var:
            raise Finding(f"{key}: M2 {m2!r} (M2/W {m2 / w!r}) expected M2 {show(ref_m2)}, "
                          f"variance {show(ref_var)}")

def check(batches):
    summary, stats = fm.DictSummary(), {}
    for batch in batches:
        before = snapshot(summary)
        error, after = expected_outcome(batch, stats)
        try:
            summary.add(batch)
        except (TypeError, ValueError, OverflowError, IndexError) as exc:
            if not same(before, snapshot(summary)):
                raise Finding(f"add({batch!r}) raised {exc!r} and changed the state")
            if isinstance(exc, IndexError) and error != "IndexError":
                raise Finding(f"add({batch!r}) raised {exc!r}")
            if error is None:
                overflow = any(sum(it[1] for it in items) > FLOAT_MAX for items in after.values())
                if not (overflow and isinstance(exc, OverflowError)):  # refusing a total beyond float64 is right
                    raise Finding(f"add({batch!r}) raised {exc!r} but every item is valid")
            continue
        if error is not None:
            raise Finding(f"add({batch!r}) succeeded; expected {error}")
        stats = after
        check_stats(summary, stats)


if __name__ == "__main__":
    _harness.main("summary_add", make_case, check)
