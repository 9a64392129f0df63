#!/usr/bin/env bash
# Train the winner (best.json) of every sampler run of ../trials32_estimate with the truth recipe
# (experiments/truth/long_recipe.yaml: the default proxy recipe 5x longer) at seeds 0 and 1, scored
# on the CIFAR-10 test split, and MobileNetV3-Small (15.8 ms, the baseline inside the 30 ms budget)
# as the reference. One JSON per network and seed; a finished one is kept (rerun to resume).
# Then `python experiments/search_efficiency/against_truth/table.py` writes table.md.
set -euo pipefail
here=experiments/search_efficiency/against_truth
mkdir -p "$here/results"

judge() {  # judge NAME ARCH: ARCH (a file or a baseline name) at seeds 0 and 1 into results/NAME_seedS.json
    for seed in 0 1; do
        out="$here/results/$1_seed${seed}.json"
        [ -s "$out" ] && continue
        nas train "$2" --recipe experiments/truth/long_recipe.yaml --seed "$seed" --test --json \
            > "$out.tmp" && mv "$out.tmp" "$out"
    done
}

for run in experiments/search_efficiency/trials32_estimate/runs/*/; do
    judge "$(basename "$run")" "$run/best.json"
done
judge mobilenet_v3_small mobilenet_v3_small
