#!/usr/bin/env bash
# GPU work in one prepared device call (a lease is short: every part has its own time limit, so one that hangs
# leaves the others).
#   check (default, about 9 minutes): issue 10's evidence: the CUDA tests of the captured step, one whole table at
#     protocol=paper on the four datasets (its wall time), `make bench`'s GPU rows with the paper-grid estimate, and
#     the report on that table.
#   runs: the CUDA tests, then issue 11's runs that the committed store (reference/measured) lacks, until
#     DEADLINE seconds (default 530): Tables 5, 3, 1 on the four datasets, 5 seeds, then Figure 1's HashedNets
#     at protocol=hashednet (the authors' HashedNet code), then the ablation preset.
#     Finished replicas come back as $OUT/results.tgz (new store entries only); a job cut at the deadline loses
#     only its own population. RUNS="overrides;overrides;..." replaces those sweeps (one part each, in order;
#     `hydra/launcher=joblib hydra.launcher.n_jobs=N` in one trains N of its jobs at once, its wheel carried in .whl);
#     TESTS=0 leaves out the CUDA tests.
#
#   PY=.venv/bin/python bash bench/gpu_check.sh prepare   # here, once: wheels the device image lacks into .whl/,
#       MNIST into data/, the back_image variant's cache compressed into data/cache/ (its source images may need
#       a download the device cannot make)
#   device run: command "bash bench/gpu_check.sh [runs]", carry [".whl", "data"], timeout_s 590
#
# Logs land in $OUT (the device's return folder). A dry run of every part on a CPU (its table part ends at the
# time limit, which leaves the replicas unstored and the log's ETA lines as the evidence):
#   PY=.venv/bin/python ACCEL=cpu OUT=/tmp/gpu_check NNCOMPRESS_RESULTS_DIR=/tmp/gpu_check/store
#   TABLE_ARGS="dataset.train_size=1000 dataset.test_size=500" BENCH_ARGS="--samples 2000 --replicas 4
#   --grid-samples 500" bash bench/gpu_check.sh
set -u
cd "$(dirname "$0")/.."
PY=${PY:-python3}
MODE=${1:-check}
if [ "$MODE" = prepare ]; then  # hydra-core and omegaconf are pure Python; antlr4 4.9.3 is an sdist, built here
    mkdir -p .whl data/cache
    $PY -m pip wheel -q --no-deps -w .whl hydra-core==1.3.8 omegaconf==2.3.1 antlr4-python3-runtime==4.9.3 \
        hydra-joblib-launcher==1.2.0 || exit
    cp "${NNCOMPRESS_DATA_DIR:-../shared/data}/mnist.npz" data/ || exit
    NNCOMPRESS_CACHE_DIR=data/cache $PY -c "from nncompress.data.datasets import Dataset, load_arrays
import numpy as np, pathlib, tempfile
tmp = pathlib.Path(tempfile.mkdtemp())
load_arrays(Dataset(name='mnist_back_image', source='regenerated'), pathlib.Path('data'), tmp)
for f in tmp.glob('*.npz'):
    with np.load(f) as d: np.savez_compressed(pathlib.Path('data/cache') / f.name, **d)" || exit
    ls -la .whl data data/cache
    exit
fi
: "${OUT:?set OUT, the folder the logs go to}"
mkdir -p "$OUT"
ACCEL=${ACCEL:-gpu}
export PYTHONUNBUFFERED=1 NNCOMPRESS_DATA_DIR=$PWD/data NNCOMPRESS_CACHE_DIR=$PWD/data/cache
export NNCOMPRESS_RESULTS_DIR=${NNCOMPRESS_RESULTS_DIR:-$PWD/multirun/results}
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
left() { local s=$(( ${DEADLINE:-530} - SECONDS )); echo $(( s > 1 ? s : 1 )); }  # seconds to the deadline of `runs`

{ nvidia-smi -L; $PY -c "import torch, pytorch_lightning as pl; print(torch.__version__, pl.__version__,
  torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA')"; } > "$OUT/env.log" 2>&1
[ "${TESTS:-1}" = 0 ] || part test_step 90 $PY -m pytest -q -p no:cacheprovider tests/test_step.py
if [ "$MODE" = runs ]; then
    mkdir -p "$NNCOMPRESS_RESULTS_DIR"
    cp -n reference/measured/*.json "$NNCOMPRESS_RESULTS_DIR"/ && ls "$NNCOMPRESS_RESULTS_DIR" > /tmp/stored_before
    # shellcheck disable=SC2206  # TABLE_ARGS is a list of overrides
    run=("$PY" src/train.py -m accelerator="$ACCEL" logger=none ${TABLE_ARGS:-})
    # One process at a time: processes time-slice the GPU, and a job cut at the deadline loses its population.
    IFS=';' read -ra sweeps <<< "${RUNS:-+experiment=table5,table3,table1 protocol=paper;+experiment=fig1 protocol=hashednet;+experiment=ablation}"
    for i in "${!sweeps[@]}"; do
        # shellcheck disable=SC2086  # a sweep is a list of overrides
        part "runs$i" "$(left)" "${run[@]}" ${sweeps[$i]}
    done
    ls "$NNCOMPRESS_RESULTS_DIR" | sort | comm -13 <(sort /tmp/stored_before) - > /tmp/stored_new
    tar czf "$OUT/results.tgz" -C "$NNCOMPRESS_RESULTS_DIR" -T /tmp/stored_new
    echo "$(wc -l < /tmp/stored_new) new replicas in results.tgz" | tee -a "$OUT/parts.log"
    exit
fi
# shellcheck disable=SC2086  # TABLE_ARGS and BENCH_ARGS are lists of overrides / options
part table6 300 $PY src/train.py -m +experiment=table6 protocol=paper accelerator=$ACCEL logger=none ${TABLE_ARGS:-}
part bench 120 $PY bench/population_speed.py --only training --accelerator "$ACCEL" ${BENCH_ARGS:-}
part report 30 $PY -m nncompress.report --results "$NNCOMPRESS_RESULTS_DIR" --out /tmp/gpu_check_reports
tar czf "$OUT/reports.tgz" -C /tmp gpu_check_reports 2>/dev/null
cat "$OUT/parts.log"
