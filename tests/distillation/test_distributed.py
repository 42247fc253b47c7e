import pytest

from xlingual.errors import ConfigError


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a CUDA device is visible")
def test_device_cuda_without_a_gpu_says_use_cpu():
    from xlingual.distillation.distributed import resolve_device

    with pytest.raises(ConfigError, match=r"no CUDA device is visible.*--device cpu"):
        resolve_device("cuda")
    assert resolve_device("auto") == "cpu"
