"""Job start-up: no module a smoke job uses imports torchvision (seconds of start-up per job); only the
CIFAR-10 / MNIST / FashionMNIST loaders do, when they run."""

import subprocess
import sys

from conftest import ROOT

CHECK = """
import importlib, json, pkgutil, sys
import losslab
names = sorted(m.name for m in pkgutil.walk_packages(losslab.__path__, "losslab."))  # every wing, every module
for name in names:
    importlib.import_module(name)
after_import = "torchvision" in sys.modules
# what a smoke training job does: embedded data, a model, a short fit, an evaluation at a weight vector
import torch
from losslab.core.data import prepare
from losslab.core.models import build
from losslab.core.weights import PointEvaluator, flatten
from losslab.core.trainer import Recipe, fit
data = prepare({"name": "digits", "n_train": 64, "n_test": 32, "preprocessing": ["normalize", "shift"]},
               resources=sys.argv[1])
model = build({"name": "convnet", "channels": [4], "hidden": [8]}, data.input_shape, data.num_classes)
fit(model, data, Recipe(epochs=1, batch_size=16), seed=0)
PointEvaluator(model, data.x_test, data.y_test).evaluate(flatten(model))
print(json.dumps({"modules": len(names), "after_import": after_import, "after_job": "torchvision" in sys.modules}))
"""


def test_smoke_jobs_do_not_import_torchvision(tmp_path):
    proc = subprocess.run([sys.executable, "-c", CHECK, str(tmp_path)], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found["modules"] > 10
    assert not found["after_import"], "importing losslab's modules imported torchvision"
    assert not found["after_job"], "a smoke-sized job (digits, fit, PointEvaluator) imported torchvision"
