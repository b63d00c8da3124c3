#!/usr/bin/env bash
# Issue 10's GPU evidence in one device call of about 9 minutes: the CUDA tests of the captured step, one whole
# table at protocol=paper on the four datasets (its wall time), `make bench`'s GPU rows with the paper-grid
# estimate, and the report on that table. Each part has its own time limit, so one that hangs leaves the others.
#
#   PY=.venv/bin/python bash bench/gpu_check.sh prepare   # here, once: wheels the device image lacks into .whl/, MNIST into data/
#   device run: command "bash bench/gpu_check.sh", carry [".whl", "data"], timeout_s 590
#
# Logs land in $OUT (the device's return folder). A dry run of every part on a CPU (its table part ends at the
# time limit, which leaves the replicas unstored and the log's ETA lines as the evidence):
#   PY=.venv/bin/python ACCEL=cpu OUT=/tmp/gpu_check NNCOMPRESS_RESULTS_DIR=/tmp/gpu_check/store
#   TABLE_ARGS="dataset.train_size=1000 dataset.test_size=500" BENCH_ARGS="--samples 2000 --replicas 4
#   --grid-samples 500" bash bench/gpu_check.sh
set -u
cd "$(dirname "$0")/.."
PY=${PY:-python3}
if [ "${1:-}" = prepare ]; then  # hydra-core and omegaconf are pure Python; antlr4 4.9.3 is an sdist, built here
    mkdir -p .whl data
    $PY -m pip wheel -q --no-deps -w .whl hydra-core==1.3.8 omegaconf==2.3.1 antlr4-python3-runtime==4.9.3 || exit
    cp "${NNCOMPRESS_DATA_DIR:-../shared/data}/mnist.npz" data/ && ls -la .whl data
    exit
fi
: "${OUT:?set OUT, the folder the logs go to}"
mkdir -p "$OUT"
ACCEL=${ACCEL:-gpu}
export PYTHONUNBUFFERED=1 NNCOMPRESS_DATA_DIR=$PWD/data NNCOMPRESS_RESULTS_DIR=${NNCOMPRESS_RESULTS_DIR:-$PWD/multirun/results}
if ! $PY -c "import hydra" 2>/dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}

part() {  # part NAME SECONDS COMMAND...: run with a time limit, log to $OUT/NAME.log, say how it ended
    local name=$1 limit=$2 start=$SECONDS; shift 2
    timeout -k 10 "$limit" "$@" > "$OUT/$name.log" 2>&1
    echo "$name: rc=$? after $((SECONDS - start)) s (limit $limit s)" | tee -a "$OUT/parts.log"
}

{ nvidia-smi -L; $PY -c "import torch, pytorch_lightning as pl; print(torch.__version__, pl.__version__,
  torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA')"; } > "$OUT/env.log" 2>&1
part test_step 90 $PY -m pytest -q -p no:cacheprovider tests/test_step.py
# shellcheck disable=SC2086  # TABLE_ARGS and BENCH_ARGS are lists of overrides / options
part table6 300 $PY src/train.py -m +experiment=table6 protocol=paper accelerator=$ACCEL logger=none ${TABLE_ARGS:-}
part bench 120 $PY bench/population_speed.py --only training --accelerator "$ACCEL" ${BENCH_ARGS:-}
part report 30 $PY -m nncompress.report --results "$NNCOMPRESS_RESULTS_DIR" --out /tmp/gpu_check_reports
tar czf "$OUT/reports.tgz" -C /tmp gpu_check_reports 2>/dev/null
cat "$OUT/parts.log"
