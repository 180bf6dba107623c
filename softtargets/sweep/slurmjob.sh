#!/usr/bin/env bash
# One SLURM array task of a sweep: runs cell $SLURM_ARRAY_TASK_ID of GRID into its own run folder.
#
#   softtargets sweep GRID --backend slurm ...   submits this script for the missing cells plus a report job
#   sbatch --array=0-479%20 slurmjob.sh configs/sweeps/seed-grid.yaml          # the same, by hand
#   sbatch --array=3,17 slurmjob.sh configs/sweeps/seed-grid.yaml --out runs/x # only some cells
#
# Arguments after GRID go to `softtargets sweep` (--out, --cache-dir, --device, --tracker). A cell whose
# folder already has result.json is skipped, so resubmitting the whole array only runs what is missing.
# Python: $SOFTTARGETS_PYTHON, else .venv/bin/python in the submit folder (`make venv`), else python3.
#SBATCH --job-name=softtargets
#SBATCH --output=slurm-%A_%a.out
#SBATCH --cpus-per-task=2
#SBATCH --time=02:00:00
set -euo pipefail
GRID="${1:?usage: sbatch --array=0-N slurmjob.sh GRID [sweep options]}"
shift
: "${SLURM_ARRAY_TASK_ID:?submit as an array job: sbatch --array=0-N slurmjob.sh GRID}"
PY="${SOFTTARGETS_PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
# one cell per task: use the task's cores, not the node's
export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}" MKL_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"
echo "softtargets: task $SLURM_ARRAY_TASK_ID of job ${SLURM_ARRAY_JOB_ID:-?} on $(hostname) with $PY"
exec "$PY" -m softtargets --quiet sweep "$GRID" --index "$SLURM_ARRAY_TASK_ID" "$@"
