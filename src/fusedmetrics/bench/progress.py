"""A progress bar on stderr (redrawn in place on a terminal, one line per case otherwise)."""
import sys
import time


class Progress:
    def __init__(self, total, stream=None, width=30, enabled=True):
        self.total = max(1, int(total))
        self.done = 0
        self.label = ""
        self.stream = sys.stderr if stream is None else stream
        self.width = width
        self.enabled = enabled
        self.start = time.perf_counter()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def set_label(self, label):
        self.label = label
        if self.enabled and not self.tty:
            self._write_line()

    def step(self, n=1):
        self.done = min(self.total, self.done + n)
        if self.enabled and self.tty:
            self._draw()

    def note(self, text):
        """A message that must not be overwritten by the bar."""
        if self.enabled and self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        if self.enabled and self.tty:
            self._draw()
        self.stream.flush()

    def close(self):
        if self.enabled and self.tty:
            self.done = self.total
            self._draw()
            self.stream.write("\n")
            self.stream.flush()

    def _bar(self):
        filled = int(self.width * self.done / self.total)
        elapsed = time.perf_counter() - self.start
        return (f"[{'#' * filled}{'.' * (self.width - filled)}] {100 * self.done / self.total:5.1f}% "
                f"{elapsed:6.1f}s  {self.label}")

    def _draw(self):
        self.stream.write("\r\033[K" + self._bar()[:150])
        self.stream.flush()

    def _write_line(self):
        self.stream.write(self._bar() + "\n")
        self.stream.flush()
