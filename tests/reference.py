"""Independent references for the accuracy tests: numpy in float64, by sorting."""
import numpy as np

# The dtypes the kernel tests sweep: every logit dtype (bfloat16 where ml_dtypes is
# installed) and every label dtype.
FLOATS = [np.float16, np.float32, np.float64]
try:
    import ml_dtypes
    FLOATS.append(ml_dtypes.bfloat16)
except ImportError:
    pass
LABELS = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


def to_float64(y):
    """Scores as float64 (exact for every float dtype we accept, bfloat16 included).
    Signalling NaNs raise the invalid flag when widened; they stay NaN, which is all we need."""
    with np.errstate(invalid="ignore"):
        return np.asarray(y).astype(np.float64)


def top_k_counts(y, t, ignore_label=None, k=1):
    """[correct, total] by a stable sort per sample: NaN first, then larger scores,
    then lower class index (numpy's argmax order). Independent of the kernels' rule."""
    y = np.moveaxis(to_float64(y), 1, -1)  # (N, d..., [1...], C)
    C = y.shape[-1]
    t = np.asarray(t)
    y = y.reshape(t.shape + (C,)) if y.size else np.zeros(t.shape + (C,))
    rows = y.reshape(t.size, C)
    labels = t.reshape(-1).astype(object)  # exact for every integer dtype
    keep = np.array([ignore_label is None or lab != ignore_label for lab in labels], dtype=bool)
    valid = keep & np.array([0 <= lab < C for lab in labels], dtype=bool)
    total = int(keep.sum())
    if not valid.any():
        return np.array([0, total], dtype=np.int64)
    rows, lab = rows[valid], np.array([int(v) for v in labels[valid]], dtype=np.int64)
    nan = np.isnan(rows)
    index = np.broadcast_to(np.arange(C), rows.shape)
    order = np.lexsort((index, np.where(nan, 0.0, -rows), ~nan), axis=-1)
    rank = np.argmax(order == lab[:, None], axis=-1)
    return np.array([int((rank < k).sum()), total], dtype=np.int64)


def argmax_counts(y, t, ignore_label=None):
    """[correct, total] with numpy's argmax over the class axis (top-1 only)."""
    pred = to_float64(y).argmax(axis=1).reshape(np.shape(t))
    t = np.asarray(t).astype(object)
    keep = np.ones(t.shape, bool) if ignore_label is None else (t != ignore_label)
    return np.array([int(((pred == t) & keep).sum()), int(keep.sum())], dtype=np.int64)
