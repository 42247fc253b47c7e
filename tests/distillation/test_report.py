import numpy as np
import pytest

from xlingual.distillation import report


def test_moving_average_is_a_trailing_mean():
    np.testing.assert_allclose(report.moving_average([1, 3, 5], 2), [1, 2, 4])
    np.testing.assert_allclose(report.moving_average([2.0, 4.0, 6.0, 8.0], 3), [2, 3, 4, 6])
    assert report.smoothing_window(12) == 2 and report.smoothing_window(1000) == 50
    assert report.smoothing_window(10**6) == 100


@pytest.mark.parametrize(
    ("values", "limits"),
    [([0.84, 0.9, 0.95], (0.82, 0.97)), ([0.0, 0.01], (0.0, 0.03)), ([0.99, 1.0], (0.97, 1.0)), ([], (0.0, 1.0))],
)
def test_accuracy_axis_zooms_to_the_data(values, limits):
    assert report.accuracy_limits(values) == pytest.approx(limits)


def test_curves_png_is_written(tmp_path):
    records = [{"step": 0, "en2ja_acc": 0.8, "ja2en_acc": 0.82}]
    records += [{"step": s, "loss": 1.0 / s, "lr": 1e-3} for s in range(1, 30)]
    records.append({"step": 29, "final": 1.0, "en2ja_acc": 0.9, "ja2en_acc": 0.92})
    out = report.plot_curves(records, tmp_path / "curves.png", contrastive_weight=0.0)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]  # no temporary file left
