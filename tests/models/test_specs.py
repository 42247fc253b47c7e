"""Model specs: builtin:, folders, hub ids; encode's normalisation; the real teacher (slow)."""

import numpy as np
import pytest

from xlingual.errors import ModelError
from xlingual.models import specs as models

# --------------------------------------------------------------------------- specs


def test_unknown_builtin_lists_the_choices():
    with pytest.raises(
        ModelError, match=r"Unknown built-in model 'builtin:bert'.*builtin:minilm-en, builtin:me5-small"
    ):
        models.load_model("builtin:bert")


def test_missing_local_folder(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        models.load_model(str(tmp_path / "nowhere"))


def test_folder_without_model_files(tmp_path):
    with pytest.raises(ModelError, match=r"neither modules\.json nor config\.json"):
        models.load_model(str(tmp_path))


def test_offline_hub_id_gives_a_clear_message():
    with pytest.raises(ModelError) as info:
        models.load_model("sentence-transformers/LaBSE")
    message = str(info.value)
    assert "'sentence-transformers/LaBSE' could not be found" in message
    assert "HF_HUB_OFFLINE=1" in message
    assert "local folder" in message and "builtin:me5-small" in message


def test_builtin_minilm_resolves_to_the_package_folder():
    path = models.resolve_model_path("builtin:minilm-en")
    assert path is not None and (path / "modules.json").is_file()


def test_encode_normalises_and_keeps_zero_rows():
    class Fixed:
        def encode(self, sentences, **kwargs):
            return np.array([[3.0, 4.0], [0.0, 0.0]])[: len(sentences)]

    emb = models.encode(Fixed(), ["a", "b"])
    assert emb.dtype == np.float32
    np.testing.assert_allclose(emb, [[0.6, 0.8], [0.0, 0.0]])


@pytest.mark.slow
def test_teacher_embeds_english():
    model = models.load_model("builtin:minilm-en", device="cpu")
    emb = models.encode(model, ["A man is eating food.", "A man eats a meal.", "The stock market fell."])
    assert emb.shape == (3, 384)
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.3
