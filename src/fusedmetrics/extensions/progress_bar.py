"""Progress display for one evaluation pass, in the layout of Chainer's Evaluator."""
import datetime

from chainer.training.extensions import util as _display


class EvaluationProgressBar(_display.ProgressBar):
    """Shows how far an evaluation pass over an iterator has come.

    Same three-line layout as Chainer's ``_IteratorProgressBar`` (bar and
    percentage, example count, speed and estimated time), written to
    ``sys.stdout`` unless ``out`` is given. Differences, on purpose:

    * the label is the evaluator's name (Chainer always prints
      ``validation``);
    * the count is the number of examples seen in this pass (as the
      iterator's ``current_position`` shows during the pass), so it does not
      wrap to 0 on the last batch and the speed never turns negative;
    * an iterator without ``epoch_detail`` (or ``current_position``) is
      allowed: the display then shows the count and speed without bar or
      percentage (Chainer raises ``TypeError``);
    * a speed of zero gives an unknown estimate instead of dividing by zero.
    """

    def __init__(self, iterator, label='validation', bar_length=None,
                 out=None):
        super().__init__(bar_length=bar_length, out=out)
        self._iterator = iterator
        self._label = label
        self._count = 0

    def update(self, batch=None):
        """Records one batch (counted by its length when it has one)."""
        try:
            self._count += len(batch)
        except TypeError:
            self._count += 1
        super().update()

    def _epoch_detail(self):
        return getattr(self._iterator, 'epoch_detail', None)

    def get_lines(self):
        epoch_detail = self._epoch_detail()
        epoch_size = getattr(self._iterator, '_epoch_size', None)
        lines = []
        if epoch_detail is not None:
            marks = '#' * max(0, min(self._bar_length,
                                     int(epoch_detail * self._bar_length)))
            dots = '.' * (self._bar_length - len(marks))
            lines.append('{} [{}{}] {:6.2%}\n'.format(
                self._label, marks, dots, epoch_detail))
        else:
            lines.append('{}\n'.format(self._label))

        if epoch_size:
            lines.append('{:10} / {} iterations\n'.format(
                self._count, epoch_size))
        else:
            lines.append('{:10} iterations\n'.format(self._count))

        speed_t, speed_e = self.update_speed(
            self._count, 0.0 if epoch_detail is None else epoch_detail)
        if epoch_detail is None:
            lines.append('{:10.5g} iters/sec.\n'.format(speed_t))
        else:
            lines.append('{:10.5g} iters/sec. Estimated time to finish: '
                         '{}.\n'.format(speed_t,
                                        _estimate(epoch_detail, speed_e)))
        return lines


def _estimate(epoch_detail, epoch_speed):
    if epoch_speed == float('inf'):
        return datetime.timedelta(seconds=0)  # first update, as Chainer
    if epoch_speed <= 0:
        return 'unknown'
    remaining = max(0.0, 1.0 - epoch_detail) / epoch_speed
    return datetime.timedelta(seconds=remaining)
