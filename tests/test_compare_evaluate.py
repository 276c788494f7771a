"""compare's in-target evaluation on real Ultralytics metrics objects (no training): what the bootstrap and the
per-class table are about for each task."""

from __future__ import annotations

import pytest

from halo_patch.compare import stats


@pytest.mark.parametrize("task", ["segment", "pose", "detect"])
def test_per_image_and_per_class_follow_the_headline_metric(task: str) -> None:
    """Segment / pose: the verdict's metric is the mask / pose mAP50-95, so the bootstrap's per-image matches and
    the per-class APs are the masks' / keypoints' (tp_m / tp_p), not the boxes'. Real Ultralytics metrics objects
    are filled with matches where box and mask / pose disagree; a class without instances gets no row."""
    from types import SimpleNamespace

    import numpy as np
    from ultralytics.utils.metrics import DetMetrics, PoseMetrics, SegmentMetrics

    from halo_patch.compare.in_target import evaluate

    names = {0: "red", 1: "blue", 2: "green"}
    metrics, key, part = {"segment": (SegmentMetrics, "tp_m", "seg"), "pose": (PoseMetrics, "tp_p", "pose"),
                          "detect": (DetMetrics, None, "box")}[task]
    metrics = metrics(names=names)
    rng = np.random.default_rng(5)
    for k in range(12):
        n, gt = int(rng.integers(1, 5)), rng.integers(0, 2, size=int(rng.integers(1, 4))).astype(float)
        stat = {"tp": rng.random((n, 10)) < 0.7, "conf": rng.random(n), "pred_cls": rng.integers(0, 2, n).astype(float),
                "target_cls": gt, "target_img": np.unique(gt), "im_name": f"{k}.png"}
        if key:
            stat[key] = rng.random((n, 10)) < 0.3
        metrics.update_stats(stat)
    metrics.process()
    images = evaluate.per_image(SimpleNamespace(metrics=metrics))
    mine = stats.mean_ap(images)
    headline = getattr(metrics, part)
    assert mine["mAP50-95"] == pytest.approx(float(headline.map), abs=1e-9)
    if key:
        assert abs(float(headline.map) - float(metrics.box.map)) > 0.05  # the box mAP would be another number
    per_class = evaluate.per_class(metrics, names)
    assert list(per_class) == ["red", "blue"]  # green: no validation instances
    for i, name in enumerate(("red", "blue")):
        assert per_class[name]["AP50-95"] == pytest.approx(float(headline.ap[i]), abs=1e-9)
        assert per_class[name]["AP50-95"] == pytest.approx(mine["per_class"][i], abs=1e-9)


def test_classify_has_no_per_class_ap_and_no_per_image_matches() -> None:
    """Classification metrics have no box / mask / pose results: no per-class AP table and no bootstrap, rather
    than an AttributeError on `metrics.box` at the end of a finished run."""
    from types import SimpleNamespace

    from ultralytics.utils.metrics import ClassifyMetrics

    from halo_patch.compare.in_target import evaluate

    metrics = ClassifyMetrics()
    assert evaluate.per_class(metrics, {0: "red", 1: "blue"}) == {}
    assert evaluate.per_image(SimpleNamespace(metrics=metrics)) == []
