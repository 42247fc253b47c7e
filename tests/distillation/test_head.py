import numpy as np
import pytest

from tests.distillation.helpers import PAIRS
from xlingual.distillation import head as head_lib
from xlingual.errors import ConfigError


def test_fit_alignment_head_recovers_a_rotation():
    rng = np.random.default_rng(0)
    teacher = rng.standard_normal((200, 8)).astype(np.float32)
    rotation, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    offset = rng.standard_normal(8)
    student = (0.5 * teacher @ rotation.T + offset).astype(np.float32)  # student = 0.5 R t + offset
    for method in ("procrustes", "lstsq"):
        weight, bias = head_lib.fit_alignment_head(student, teacher, method)
        mapped = student @ weight.T + bias
        np.testing.assert_allclose(mapped, teacher, atol=1e-4)
    with pytest.raises(ConfigError, match="--init 'pca'"):
        head_lib.fit_alignment_head(student, teacher, "pca")


def test_inserted_head_maps_the_student_onto_the_teacher(tiny_models):
    from xlingual.models.specs import encode, load_model

    student, teacher = load_model(tiny_models["student"]), load_model(tiny_models["teacher"])
    texts = [en for en, _ in PAIRS] + [ja for _, ja in PAIRS]
    target = encode(teacher, [en for en, _ in PAIRS] * 2)
    before = encode(student, texts)
    weight, bias = head_lib.fit_alignment_head(before, target, "lstsq")
    head_lib.insert_head(student, weight, bias, 16)
    after = encode(student, texts)
    expected = before @ weight.T + bias
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(after, expected, atol=1e-5)  # Normalize → Dense(head) → Normalize
    random_mse = np.mean((encode(load_model(tiny_models["student"]), texts)[:, :16] - target) ** 2)
    assert np.mean((after - target) ** 2) < 0.5 * random_mse
