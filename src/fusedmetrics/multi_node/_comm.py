"""Turns what the user passed as ``comm`` into an mpi4py intra-communicator.

mpi4py is imported lazily: importing ``mpi4py.MPI`` initialises MPI, which must not happen
merely because ``import fusedmetrics`` ran.
"""


def resolve_comm(comm, argname="comm"):
    """Returns the mpi4py ``Intracomm`` behind ``comm``.

    Accepts an mpi4py intra-communicator (e.g. ``MPI.COMM_WORLD``) or a ChainerMN communicator
    (anything with an ``mpi_comm`` attribute holding one). Raises TypeError naming ``argname``
    otherwise.
    """
    if comm is None:
        raise TypeError(
            f"{argname} must be an mpi4py communicator (e.g. mpi4py.MPI.COMM_WORLD) or a ChainerMN "
            "communicator, got None")
    inner = getattr(comm, "mpi_comm", comm)  # ChainerMN communicators wrap an mpi4py one
    try:
        from mpi4py import MPI
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"{argname}: multi-node support needs mpi4py (pip install 'fusedmetrics[mpi]')") from exc
    if isinstance(inner, MPI.Intercomm):
        raise TypeError(f"{argname} must be an intra-communicator; got an mpi4py Intercomm")
    if not isinstance(inner, MPI.Intracomm):
        where = " (its .mpi_comm)" if inner is not comm else ""
        raise TypeError(
            f"{argname} must be an mpi4py Intracomm (e.g. mpi4py.MPI.COMM_WORLD) or a ChainerMN "
            f"communicator; got {type(comm).__module__}.{type(comm).__qualname__}{where}")
    if inner == MPI.COMM_NULL:
        raise ValueError(f"{argname} is MPI.COMM_NULL; this process is not part of the communicator")
    return inner


def same_communicator(a, b):
    """True when two mpi4py communicators are the same or congruent (same group, same order)."""
    from mpi4py import MPI
    return MPI.Comm.Compare(a, b) in (MPI.IDENT, MPI.CONGRUENT)
