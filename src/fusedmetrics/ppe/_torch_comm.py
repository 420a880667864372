"""torch.distributed seen through the few mpi4py calls that multi_node's StateAggregator makes."""
import numpy as np
import torch
import torch.distributed as dist


class TorchComm:
    """Get_size / Get_rank / Allgather (one float64 all_gather) / allgather (objects)."""

    def __init__(self, group=None):
        self.group = group

    def Get_size(self):
        return dist.get_world_size(self.group)

    def Get_rank(self):
        return dist.get_rank(self.group)

    def _device(self):
        if dist.get_backend(self.group) == "nccl":  # NCCL moves CUDA tensors only
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def Allgather(self, send, recv):
        """recv[r] = send of rank r: one all_gather of the packed float64 table."""
        device = self._device()
        mine = torch.from_numpy(np.ascontiguousarray(send)).to(device)
        parts = [torch.empty_like(mine) for _ in range(self.Get_size())]
        dist.all_gather(parts, mine, group=self.group)
        for r, part in enumerate(parts):
            recv[r] = part.cpu().numpy()

    def allgather(self, obj):
        out = [None] * self.Get_size()
        dist.all_gather_object(out, obj, group=self.group)
        return out
