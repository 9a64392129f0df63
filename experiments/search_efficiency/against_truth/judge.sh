#!/usr/bin/env bash
# Train the winner (best.json) of every sampler run of ../trials32_estimate with the truth recipe
# (experiments/truth/long_recipe.yaml: the default proxy recipe 5x longer) at seeds 0 and 1, scored
# on the CIFAR-10 test split. One JSON per winner and seed; a finished one is kept (rerun to resume).
# Then `python experiments/search_efficiency/against_truth/table.py` writes table.md.
set -euo pipefail
here=experiments/search_efficiency/against_truth
for run in experiments/search_efficiency/trials32_estimate/runs/*/; do
    name=$(basename "$run")
    for seed in 0 1; do
        out="$here/results/${name}_seed${seed}.json"
        [ -s "$out" ] && continue
        mkdir -p "$here/results"
        nas train "$run/best.json" --recipe experiments/truth/long_recipe.yaml --seed "$seed" --test --json \
            > "$out.tmp" && mv "$out.tmp" "$out"
    done
done
# MobileNetV3-Small (15.8 ms), the baseline inside the 30 ms budget, as the reference
for seed in 0 1; do
    out="$here/results/mobilenet_v3_small_seed${seed}.json"
    [ -s "$out" ] && continue
    nas train mobilenet_v3_small --recipe experiments/truth/long_recipe.yaml --seed "$seed" --test --json \
        > "$out.tmp" && mv "$out.tmp" "$out"
done
