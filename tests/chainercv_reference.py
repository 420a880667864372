"""ChainerCV 0.13's eval_semantic_segmentation, re-derived from its documentation (ChainerCV does not
build on Python 3.11): written independently, with Python lists and loops, no bincount."""
import math


# Documented behaviour: the number of classes is 1 + the largest label among predictions and
# ground truth (all pixels); pixels whose ground truth is negative are not counted;
# N_ij = pixels of true class i predicted as j;
#   IoU_i = N_ii / (sum_j N_ij + sum_j N_ji - N_ii), mIoU = nanmean(IoU),
#   pixel accuracy = sum_i N_ii / sum_ij N_ij,
#   class accuracy_i = N_ii / sum_j N_ij, mean class accuracy = nanmean(class accuracy).

def chainercv_reference(pred_labels, gt_labels):
    n = 0
    for p, g in zip(pred_labels, gt_labels):
        n = max(n, int(max(p.max(), g.max())) + 1)
    counts = [[0] * n for _ in range(n)]
    for p, g in zip(pred_labels, gt_labels):
        for truth, guess in zip(g.ravel().tolist(), p.ravel().tolist()):
            if truth >= 0:
                counts[truth][guess] += 1

    def div(a, b):
        return a / b if b else math.nan

    iou, class_acc = [], []
    for i in range(n):
        row = sum(counts[i])
        col = sum(counts[j][i] for j in range(n))
        iou.append(div(counts[i][i], row + col - counts[i][i]))
        class_acc.append(div(counts[i][i], row))
    total = sum(map(sum, counts))
    hits = sum(counts[i][i] for i in range(n))

    def nanmean(xs):
        xs = [x for x in xs if not math.isnan(x)]
        return sum(xs) / len(xs) if xs else math.nan

    return {"iou": iou, "miou": nanmean(iou), "pixel_accuracy": div(hits, total),
            "class_accuracy": class_acc, "mean_class_accuracy": nanmean(class_acc)}


