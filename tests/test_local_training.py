"""The local training scripts as a user runs them: subprocesses from the repository root, offline, small runs."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFLUENCE = "local_training/train_confluence_model.py"
ASTER = "local_training/train_aster_native_model.py"
SMALL = ["--offline", "--symbols", "BTC/USDT", "ETH/USDT", "SOL/USDT", "--days", "120", "--folds", "2"]
# one thread each: torch and xgboost slow down many times over when their threads share cores with other work
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
TINY_LSTM = ["--kind", "lstm", "--hidden", "8", "--layers", "1", "--seq-len", "8", "--epochs", "1",
             "--samples-per-epoch", "256"]

pytestmark = pytest.mark.slow


def run(script: str, home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, script, "--home", str(home), *args], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=180)


def saved_record(out: str, home: Path) -> dict:
    model_id = re.search(r"^model id: (mdl-\S+)$", out, re.M).group(1)
    folder = home / "models" / model_id
    assert f"stored:   {folder}" in out
    return json.loads((folder / "model.json").read_text())


def test_confluence_xgboost_run_prints_the_report_and_stores_the_model(tmp_path):
    done = run(CONFLUENCE, tmp_path, *SMALL, "--kind", "xgboost", "--n-estimators", "20")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("verdict: Out of sample (2 walk-forward folds, ")
    assert re.search(r"^ {3}1  \d{4}-\d\d-\d\d \d\d:\d\d .. .+  model ", done.stdout, re.M)
    assert re.search(r"^ all .+  model .+\n +majority .+\n +momentum ", done.stdout, re.M)
    assert re.search(r"^ {3}1\. \w+ ", done.stdout, re.M)  # the top features
    assert re.search(r"^device: +cpu$", done.stdout, re.M) and "training: " in done.stdout
    record = saved_record(done.stdout, tmp_path)
    assert (record["kind"], record["variant"], len(record["folds"])) == ("xgboost", "general", 2)
    assert "100/100%" in done.stderr  # the progress bar reached its end on stderr


def test_aster_native_lstm_run(tmp_path):
    done = run(ASTER, tmp_path, *SMALL, *TINY_LSTM)
    assert done.returncode == 0, done.stderr
    assert "verdict: " in done.stdout and "none (an LSTM reports no importances)" in done.stdout
    record = saved_record(done.stdout, tmp_path)
    assert (record["kind"], record["variant"]) == ("lstm", "aster_native")
    assert record["params"]["lstm"]["hidden"] == 8


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.parametrize("args, field", [
    (["--horizon", "0"], "horizon"),
    (["--n-estimators", "0"], "xgboost.n_estimators"),
    (["--embargo", "3"], "embargo"),
    (["--device", "cuda"], "device"),
    (["--days", "5", "--folds", "8"], None),  # too short even for the features' 30-day window
    (["--days", "35", "--folds", "8"], "days"),  # features fit, but 8 test blocks do not
])
def test_bad_input_names_the_field_and_exits_2(tmp_path, args, field):
    if "cuda" in args and _cuda():
        pytest.skip("the case is device=cuda on a machine without CUDA, and this machine has CUDA")
    done = run(CONFLUENCE, tmp_path, "--offline", *args)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    error = done.stderr.strip().splitlines()[-1]
    name = re.escape(field) if field else r"[\w.\[\]]+"
    assert re.match(rf"error: {name}: \S", error), error


def test_ctrl_c_stops_cleanly_without_a_half_model(tmp_path):
    # small batches: progress (where a stop request is seen) comes every 10 batches, i.e. often
    args = [sys.executable, ASTER, "--home", str(tmp_path), *SMALL, "--kind", "lstm", "--hidden", "16",
            "--layers", "1", "--seq-len", "8", "--batch-size", "8", "--epochs", "100"]
    process = subprocess.Popen(args, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    models = tmp_path / "models"
    deadline = time.monotonic() + 120
    while not any(models.glob(".*.partial")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)  # the staging folder appears once fitting starts
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err and out == ""
    assert not any(models.iterdir())
