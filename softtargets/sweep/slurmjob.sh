#!/usr/bin/env bash
# One SLURM array task of a sweep: array task $SLURM_ARRAY_TASK_ID of GRID, a group of cells that share their
# original and reference models (trained or loaded once), each into its own run folder.
#
#   softtargets sweep GRID --backend slurm ...   submits this script for the tasks with missing cells + a report job
#   softtargets sweep GRID --dry-run              lists the cells, their task numbers and the sbatch line
#   sbatch --array=0-59%20 slurmjob.sh configs/sweeps/seed-grid.yaml            # the same, by hand
#   sbatch --array=0-119 slurmjob.sh GRID --cells-per-task 4 --out runs/x      # groups split, at most 4 cells each
#
# Arguments after GRID go to `softtargets sweep` (--cells-per-task, --out, --cache-dir, --device, --tracker). Cells
# whose folder has result.json are skipped, so resubmitting the whole array only runs what is missing. SLURM warns
# the task (SIGUSR1) before its time limit: it abandons the cell in progress and requeues itself (docs/hpc.md).
# Python: $SOFTTARGETS_PYTHON, else .venv/bin/python in the submit folder (`make venv`), else python3.
#SBATCH --job-name=softtargets
#SBATCH --output=slurm-%A_%a.out
#SBATCH --open-mode=append
#SBATCH --cpus-per-task=2
#SBATCH --time=02:00:00
#SBATCH --requeue
#SBATCH --signal=B:USR1@120
# SLURM may send the warning up to a minute early: one that comes before softtargets has set up its handler is
# ignored (the default action would kill the task); the SIGTERM at the limit then requeues the task instead.
trap '' USR1
set -euo pipefail
GRID="${1:?usage: sbatch --array=0-N slurmjob.sh GRID [sweep options]}"
shift
: "${SLURM_ARRAY_TASK_ID:?submit as an array job: sbatch --array=0-N slurmjob.sh GRID}"
PY="${SOFTTARGETS_PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
# the cells run one after another: use the task's cores, not the node's
export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}" MKL_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"
echo "softtargets: task $SLURM_ARRAY_TASK_ID of job ${SLURM_ARRAY_JOB_ID:-?} (run ${SLURM_RESTART_COUNT:-0}) on $(hostname) with $PY"
# exec: the signals SLURM sends to the batch shell (B:USR1, SIGTERM) reach softtargets itself
exec "$PY" -m softtargets --quiet sweep "$GRID" --task "$SLURM_ARRAY_TASK_ID" "$@"
