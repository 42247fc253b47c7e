import json

import numpy as np
import pytest

from tests.distillation.helpers import distill_config as _config
from tests.distillation.helpers import weights as _weights
from xlingual.distillation import checkpoint as checkpoint_lib
from xlingual.distillation import run as distill_lib
from xlingual.errors import XlingualError


def test_damaged_checkpoint_falls_back_to_the_previous_one(tiny_models, corpus, tmp_path, isolated_home, caplog):
    full = distill_lib.distill(_config(tiny_models, corpus, tmp_path / "run"))
    run = full.run_dir
    older, newest = checkpoint_lib.checkpoints(run)
    manifest = json.loads((newest / checkpoint_lib.CHECKPOINT_MANIFEST).read_text())
    assert manifest["step"] == 6
    assert {"optim.pt", "trainer_state.json", "rng-rank0.pt", "model/modules.json"} <= set(manifest["files"])
    before = _weights(full.model_dir)
    data = bytearray((newest / "optim.pt").read_bytes())
    data[len(data) // 2] ^= 0x01
    (newest / "optim.pt").write_bytes(bytes(data))

    with caplog.at_level("WARNING", logger="xlingual.distillation.checkpoint"):
        resumed = distill_lib.distill(_config(tiny_models, corpus, run, resume=True))
    assert f"checkpoint {newest} does not match its manifest ({newest / 'optim.pt'}: sha256" in caplog.text
    assert "expected" in caplog.text and f"resumes from {older.name} instead" in caplog.text
    assert (run / "checkpoints" / f"damaged-{newest.name}").is_dir()
    after = _weights(resumed.model_dir)  # steps 5 and 6 again, from the intact checkpoint
    assert max(float(np.abs(before[k] - after[k]).max()) for k in before) <= 1e-5

    for checkpoint in checkpoint_lib.checkpoints(run):  # a size change in every checkpoint: nothing to resume from
        with open(checkpoint / checkpoint_lib.STATE_FILE, "a") as fh:
            fh.write(" ")
    with pytest.raises(XlingualError, match=r"no checkpoint in .* matches its manifest") as info:
        distill_lib.distill(_config(tiny_models, corpus, run, resume=True))
    assert "bytes, expected" in str(info.value) and "--overwrite" in str(info.value)
