"""MicroAverage for pytorch-pfn-extras: sum(numerator) / sum(denominator) over a period."""
import math

from pytorch_pfn_extras import reporting
from pytorch_pfn_extras.training import extension
from pytorch_pfn_extras.training import trigger as trigger_module

from .._interop import is_torch_tensor

__all__ = ["MicroAverage"]


def _plain(value):
    """A Python number for the state dict (a device tensor syncs here, at save time only)."""
    if is_torch_tensor(value):
        return value.detach().item()
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def _ratio(num, den):
    """num / den with IEEE rules at den == 0 (NaN, +-inf) instead of ZeroDivisionError."""
    if den:
        return num / den
    return math.nan if num == 0 or math.isnan(num) else math.copysign(math.inf, num) * math.copysign(1.0, den)


class MicroAverage(extension.Extension):
    """Drop-in for ``ppe.training.extensions.MicroAverage``: same arguments, priority,
    skipping rule (both keys must be observed) and report ``float(num) / den``.

    The sums are kept with ``+`` in the observed values' own type: torch tensors on a
    GPU stay there (no synchronisation per iteration; one when the trigger fires),
    integers stay exact. Deliberate differences from ppe:

    * ``state_dict()`` also saves the averaging trigger's state (``_trigger``), so a
      resumed run does not fire early with a partial ratio; ppe's does not. Sums are
      saved as Python numbers (``torch.load(..., weights_only=True)`` reads them) and
      ppe's state dicts load.
    * Observed tensors are summed detached (ppe keeps the autograd graph alive).
    * The result is a Python float. A zero denominator (every label of the period
      ignored, say) gives NaN, or +-inf over a nonzero numerator, as ppe's division by
      a tensor does; ppe raises ZeroDivisionError when the sums are Python numbers.
    """

    priority = extension.PRIORITY_EDITOR

    def __init__(self, numerator_key, denominator_key, result_key, trigger=(1, "epoch")):
        self._trigger = trigger_module.get_trigger(trigger)
        self._numerator_key = numerator_key
        self._denominator_key = denominator_key
        self._result_key = result_key
        self._numerator = 0
        self._denominator = 0

    def __call__(self, manager):
        observation = manager.observation
        if self._numerator_key not in observation or self._denominator_key not in observation:
            return
        num, den = observation[self._numerator_key], observation[self._denominator_key]
        self._numerator = self._numerator + (num.detach() if is_torch_tensor(num) else num)
        self._denominator = self._denominator + (den.detach() if is_torch_tensor(den) else den)
        if self._trigger(manager):
            result = _ratio(float(self._numerator), float(self._denominator))
            self._numerator = 0
            self._denominator = 0
            reporting.report({self._result_key: result})

    def state_dict(self):
        state = {"_numerator": _plain(self._numerator), "_denominator": _plain(self._denominator)}
        if hasattr(self._trigger, "state_dict"):
            state["_trigger"] = self._trigger.state_dict()
        return state

    def load_state_dict(self, to_load):
        self._numerator = _plain(to_load["_numerator"])
        self._denominator = _plain(to_load["_denominator"])
        if "_trigger" in to_load and hasattr(self._trigger, "load_state_dict"):
            self._trigger.load_state_dict(to_load["_trigger"])
