"""``create_multi_node_evaluator``: one exact evaluation over the union of all ranks' batches."""
import threading
import types

from ._aggregate import StateAggregator, report_local_failure
from ._comm import resolve_comm, same_communicator

_ATTR = "_fm_multi_node"
_capture_lock = threading.RLock()


class _MultiNodeState:
    def __init__(self, comm, mpi_comm, local_state, original_evaluate, original_evaluate_summary):
        self.comm = comm                  # what the user passed (kept for introspection)
        self.mpi_comm = mpi_comm
        self.local_state = local_state    # () -> this rank's state dict (host numpy)
        self.original_evaluate = original_evaluate
        self.original_evaluate_summary = original_evaluate_summary
        self.aggregator = StateAggregator(mpi_comm)


def create_multi_node_evaluator(evaluator, comm):
    """Patches ``evaluator`` in place so that ``evaluate()`` is one evaluation over all ranks.

    After the patch, ``evaluator.evaluate()`` returns on every rank the dict that a single process
    evaluating all ranks' batches (rank 0's, then rank 1's, ...) would return: the same keys, the
    means of the combined (W, mean, M2) states, bit-identical on every rank. Works for
    ``fusedmetrics.extensions.Evaluator`` (through ``evaluate_summary()``, which is patched too and
    returns the global DictSummary) and for ``chainer.training.extensions.Evaluator`` (its
    ``evaluate()`` runs with ``chainer.reporter.DictSummary`` temporarily replaced by
    fusedmetrics' DictSummary, so its summary state can be read). Returns ``evaluator``, like
    ChainerMN's function, and keeps its ``__call__``, name and trigger.

    ``comm``: an mpi4py intra-communicator or a ChainerMN communicator (its ``.mpi_comm`` is used).

    Communication per evaluation (see ``_aggregate``): ONE float64 ``Allgather`` of the packed
    states, with a header row carrying the error status and a "new key names" flag; only when
    some rank reported a name the ranks had not agreed on before (e.g. the first evaluation), an
    ``allgather`` of the names and a second packed ``Allgather`` follow. Uneven shards, ranks with
    no batches and keys reported by only some ranks give exact results and never hang, because
    every rank makes the same collectives whatever it saw.

    Deliberate differences from ``chainermn.create_multi_node_evaluator``: ChainerMN averages the
    ranks' means with equal weight (biased for uneven shards), makes one pickled collective per
    key in sorted order (hangs when key sets differ or a rank has no batches) and returns sorted
    keys; here the result is exact and keys come in first-seen order (rank 0's first). With
    Chainer's Evaluator the result values are those of fusedmetrics' DictSummary (float64 state),
    not of Chainer's.

    Errors: if the local evaluation raises on some rank, that rank prints its traceback with its
    rank to stderr and re-raises; every other rank raises ``RemoteEvaluationError`` naming the
    failed ranks. So an uncaught error ends the whole job instead of hanging it. Every rank must
    wrap its evaluator and call ``evaluate()`` equally often (as with any MPI collective). Errors
    elsewhere (e.g. in a training step) are outside this protocol: run scripts as
    ``mpiexec -n P python -m mpi4py script.py`` so that an uncaught exception on any rank aborts
    the job; with a plain ``python script.py`` MPICH leaves the other ranks waiting.
    An evaluator with a ``multi_node_observation(mpi_comm)`` method (``ClassificationEvaluator``)
    has it called on every rank after the summary's collective; the ``{key: value}`` it returns
    (exact over all ranks, from its own collective) is added to ``evaluate()``'s result.
    An evaluator that counts over the ranks itself (``SemanticSegmentationEvaluator``: one
    confusion matrix summed by its ``comm``) is given ``comm`` instead, and returned unpatched.
    Subclasses of Chainer's Evaluator whose ``evaluate()`` does not return the
    ``compute_mean()`` of a ``chainer.reporter.DictSummary`` it created are rejected at evaluation
    time with a TypeError (raised on all ranks, as above).
    """
    if isinstance(evaluator, type):
        raise TypeError(f"evaluator must be an Evaluator instance, got the class {evaluator.__qualname__}")
    original_evaluate = getattr(evaluator, "evaluate", None)
    if not callable(original_evaluate):
        raise TypeError(
            "evaluator must be an Evaluator (fusedmetrics.extensions.Evaluator or "
            "chainer.training.extensions.Evaluator), an object with an evaluate() method; got "
            f"{type(evaluator).__module__}.{type(evaluator).__qualname__}")
    mpi_comm = resolve_comm(comm, "comm")

    existing = getattr(evaluator, _ATTR, None)
    if isinstance(existing, _MultiNodeState):
        if same_communicator(existing.mpi_comm, mpi_comm):
            return evaluator  # wrapping twice with the same communicator is harmless
        raise ValueError(
            "evaluator is already a multi-node evaluator for a different communicator "
            f"(size {existing.mpi_comm.Get_size()} vs size {mpi_comm.Get_size()} given)")
    if hasattr(evaluator, "_mn_original_evaluate"):
        raise ValueError("evaluator was already patched by chainermn.create_multi_node_evaluator; "
                         "pass the unpatched evaluator")
    if getattr(evaluator, "counts_over_ranks_with_comm", False):
        # Its scores come from one matrix summed over the ranks (its own comm), never from
        # a mean of per-rank scores: give it the communicator instead of patching it.
        if evaluator.comm is None:
            evaluator.comm = comm
        elif not same_communicator(resolve_comm(evaluator.comm, "evaluator.comm"), mpi_comm):
            raise ValueError("evaluator already has a comm, for a different communicator than the one given")
        return evaluator

    original_summary = getattr(evaluator, "evaluate_summary", None)
    if callable(original_summary):
        def local_state():
            return original_summary().state_dict()  # device parts come to the host here, once
    else:
        original_summary = None

        def local_state():
            return _capture_chainer_state(original_evaluate, evaluator)

    setattr(evaluator, _ATTR, _MultiNodeState(comm, mpi_comm, local_state, original_evaluate,
                                              original_summary))
    evaluator.evaluate_summary = types.MethodType(_global_evaluate_summary, evaluator)
    evaluator.evaluate = types.MethodType(_global_evaluate, evaluator)
    return evaluator


def is_multi_node_evaluator(evaluator):
    """True when ``evaluator`` was patched by ``create_multi_node_evaluator``."""
    return isinstance(getattr(evaluator, _ATTR, None), _MultiNodeState)


def _global_evaluate(self):
    result = self.evaluate_summary().compute_mean()
    # Values a mean of per-rank values cannot give exactly (ClassificationEvaluator's
    # per-class scores) come from the evaluator's own collective, after the summary's:
    # every rank reaches it, since the summary raised on all ranks or on none.
    extra = getattr(self, "multi_node_observation", None)
    if callable(extra):
        result.update(extra(getattr(self, _ATTR).mpi_comm))
    return result


def _global_evaluate_summary(self):
    """The fusedmetrics DictSummary of one evaluation over all ranks' batches."""
    from ..summary import DictSummary

    st = getattr(self, _ATTR)
    comm = st.mpi_comm
    try:
        local_state = st.local_state()
    except Exception as exc:  # every rank must still reach the header collective
        report_local_failure(exc, comm.Get_rank(), comm.Get_size())
        return st.aggregator.aggregate(None, failure=exc)  # raises on every rank
    return DictSummary.from_state_dict(st.aggregator.aggregate(local_state))


def _capture_chainer_state(evaluate, evaluator):
    """Runs Chainer's ``evaluate()`` with a capturing fusedmetrics DictSummary; returns its state dict."""
    import chainer.reporter as reporter_module

    from ..summary import DictSummary

    created = []

    class _CapturingDictSummary(DictSummary):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            created.append(self)

    with _capture_lock:  # the module attribute is global; RLock allows nested evaluators
        saved = reporter_module.DictSummary
        reporter_module.DictSummary = _CapturingDictSummary
        try:
            result = evaluate()
        finally:
            reporter_module.DictSummary = saved

    if not isinstance(result, dict):
        raise TypeError(f"{type(evaluator).__qualname__}.evaluate() returned "
                        f"{type(result).__name__}, expected a dict")
    keys = set(result)
    for summary in reversed(created):  # Chainer's evaluate() creates exactly one
        state = summary.state_dict()
        if set(state["names"]) == keys:
            return state
    raise TypeError(
        f"{type(evaluator).__qualname__}.evaluate() did not return the compute_mean() of a "
        "chainer.reporter.DictSummary it created (result keys "
        f"{sorted(keys)[:5]}{'...' if len(keys) > 5 else ''}); create_multi_node_evaluator needs "
        "fusedmetrics.extensions.Evaluator (evaluate_summary()) or an evaluate() like "
        "chainer.training.extensions.Evaluator's")
