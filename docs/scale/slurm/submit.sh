#!/bin/bash
# Queues the shards as a job array and the merge as a job that starts only when every
# array task has succeeded (afterok). Run from the folder holding the two .sbatch files.
set -euo pipefail
mkdir -p logs
shards=$(sbatch --parsable shard.sbatch)
merge=$(sbatch --parsable --dependency=afterok:"$shards" merge.sbatch)
echo "shards: job array $shards; merge: job $merge (starts when every shard succeeded)"
