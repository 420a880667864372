"""Drop-ins for pytorch-pfn-extras 0.9 (filled in below)."""
