#!/usr/bin/env python
"""Train a tiny fully convolutional net on synthetic segmentation images with a Chainer Trainer.

Each image shows a few coloured rectangles on a noisy background; the label map gives every
pixel its rectangle's class (0 is background) and marks a one-pixel border around each
rectangle as -1 (ignored). Validation uses fusedmetrics' SemanticSegmentationEvaluator, a
drop-in for ChainerCV's: mIoU, pixel accuracy, mean class accuracy and per-class IoU,
counted into one confusion matrix as the label maps arrive (none are kept).

    python examples/train_segmentation.py                      # CPU, well under a minute
    python examples/train_segmentation.py --device @cupy:0     # GPU
"""
import sys

import numpy

import chainer
import chainer.functions as F
import chainer.links as L
from chainer.training import extensions as chainer_extensions

from fusedmetrics import extensions

from _common import example_parser, make_trainer

LABEL_NAMES = ('background', 'red', 'green', 'blue')


def make_images(n, size, seed):
    """``n`` (image, label) pairs: float32 (3, size, size) and int32 (size, size)."""
    rng = numpy.random.RandomState(seed)
    pairs = []
    for _ in range(n):
        img = rng.normal(0.0, 0.3, (3, size, size)).astype(numpy.float32)
        label = numpy.zeros((size, size), numpy.int32)
        for _ in range(rng.randint(1, 4)):
            cls = rng.randint(1, len(LABEL_NAMES))
            h, w = rng.randint(3, size // 2, size=2)
            y, x = rng.randint(0, size - h), rng.randint(0, size - w)
            label[max(y - 1, 0):y + h + 1, max(x - 1, 0):x + w + 1] = -1
            label[y:y + h, x:x + w] = cls
            img[cls - 1, y:y + h, x:x + w] += 1.0
        pairs.append((img, label))
    return pairs


class TinyFCN(chainer.Chain):
    """Two 3x3 convolutions; ``predict`` follows ChainerCV's segmentation contract."""

    def __init__(self, n_class, n_units=8):
        super().__init__()
        with self.init_scope():
            self.c1 = L.Convolution2D(3, n_units, 3, pad=1)
            self.c2 = L.Convolution2D(n_units, n_class, 3, pad=1)

    def forward(self, x):
        return self.c2(F.relu(self.c1(x)))

    def predict(self, imgs):
        """A list of (3, H, W) images in, a list of (H, W) int32 label maps out."""
        with chainer.using_config('train', False), chainer.no_backprop_mode():
            x = self.xp.asarray(numpy.stack(imgs))
            labels = self.forward(x).array.argmax(axis=1).astype(numpy.int32)
        return list(chainer.backend.CpuDevice().send(labels))


class PixelLoss(chainer.Chain):
    """Softmax cross-entropy over the pixels, -1 ignored."""

    def __init__(self, net):
        super().__init__()
        with self.init_scope():
            self.net = net

    def forward(self, x, t):
        loss = F.softmax_cross_entropy(self.net(x), t, ignore_label=-1)
        chainer.report({'loss': loss}, self)
        return loss


def parse_args(argv=None):
    p = example_parser(__doc__, epoch=4, batchsize=16, n_train=192, n_test=61)
    p.add_argument('--size', type=int, default=24, help='image side in pixels')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    device = chainer.get_device(args.device)
    numpy.random.seed(args.seed)
    train = make_images(args.n_train, args.size, args.seed)
    test = make_images(args.n_test, args.size, args.seed + 1)

    net = TinyFCN(len(LABEL_NAMES))
    model = PixelLoss(net)
    model.to_device(device)
    device.use()
    optimizer = chainer.optimizers.Adam(alpha=0.01)
    optimizer.setup(model)

    trainer, test_iter = make_trainer(args, train, test, optimizer, device)

    # The same call as ChainerCV's; the target is the net with predict().
    trainer.extend(extensions.SemanticSegmentationEvaluator(
        test_iter, net, LABEL_NAMES))
    trainer.extend(chainer_extensions.LogReport())
    trainer.extend(chainer_extensions.PrintReport(
        ['epoch', 'main/loss', 'validation/main/miou',
         'validation/main/pixel_accuracy', 'validation/main/mean_class_accuracy',
         'validation/main/iou/background', 'elapsed_time']))
    trainer.run()
    return 0


if __name__ == '__main__':
    sys.exit(main())
