"""A thread-backed stand-in for an mpi4py communicator: ranks are threads of this process.

Only what the confusion-matrix and summary collectives use: ``Get_rank``, ``Get_size``, an
in-place ``Allreduce`` with SUM or MAX, ``Allgather`` and the object ``allgather``.
``run_ranks(size, fn)`` runs ``fn(comm)`` on every rank and returns the per-rank results (or
exceptions). Install it with ``patch_resolve(monkeypatch)``.
"""
import threading

import numpy


class FakeGroup:
    def __init__(self, size):
        self.size = size
        self.barrier = threading.Barrier(size, timeout=30)
        self.slots = [None] * size
        self.calls = []  # (op, length) per collective, from rank 0


class FakeComm:
    def __init__(self, group, rank):
        self.group, self.rank = group, rank

    def Get_rank(self):
        return self.rank

    def Get_size(self):
        return self.group.size

    def Allreduce(self, sendbuf, recvbuf, op):
        from mpi4py import MPI
        assert sendbuf is MPI.IN_PLACE
        g = self.group
        g.slots[self.rank] = numpy.array(recvbuf, copy=True)
        g.barrier.wait()
        stack = numpy.stack(g.slots)
        if op == MPI.SUM:
            result = stack.sum(axis=0)
        elif op == MPI.MAX:
            result = stack.max(axis=0)
        else:
            raise AssertionError(f"unexpected op {op}")
        g.barrier.wait()
        if self.rank == 0:
            g.calls.append(("SUM" if op == MPI.SUM else "MAX", recvbuf.size))
        recvbuf[...] = result


    def Allgather(self, sendbuf, recvbuf):
        g = self.group
        g.slots[self.rank] = numpy.array(sendbuf, copy=True)
        g.barrier.wait()
        recvbuf[...] = numpy.stack(g.slots).reshape(recvbuf.shape)
        g.barrier.wait()
        if self.rank == 0:
            g.calls.append(("Allgather", numpy.asarray(sendbuf).size))

    def allgather(self, obj):
        g = self.group
        g.slots[self.rank] = obj
        g.barrier.wait()
        result = list(g.slots)
        g.barrier.wait()
        if self.rank == 0:
            g.calls.append(("allgather", None))
        return result


def patch_resolve(monkeypatch):
    """Lets the fake through ``resolve_comm`` wherever fusedmetrics looks it up."""
    from fusedmetrics.multi_node import _comm, _confusion, _evaluator
    real = _comm.resolve_comm

    def resolve(comm, argname="comm"):
        return comm if isinstance(comm, FakeComm) else real(comm, argname)

    monkeypatch.setattr(_comm, "resolve_comm", resolve)
    monkeypatch.setattr(_confusion, "resolve_comm", resolve)
    monkeypatch.setattr(_evaluator, "resolve_comm", resolve)


def run_ranks(size, fn):
    group = FakeGroup(size)
    results = [None] * size

    def body(rank):
        try:
            results[rank] = fn(FakeComm(group, rank))
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            results[rank] = exc

    threads = [threading.Thread(target=body, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results, group
