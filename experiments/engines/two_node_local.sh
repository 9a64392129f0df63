#!/usr/bin/env bash
# A two-node Ray cluster on one machine (a head and a worker, one CPU each), a Ray-engine search
# on it, the trials each node ran, and a clean stop of exactly the processes started here.
#
#   bash experiments/engines/two_node_local.sh 2>&1 | tee experiments/engines/two_node_local.log
#
# On real machines run the two `ray start` lines on different hosts (see docs/ray.md) and stop
# them with `ray stop`; here `ray stop` would also stop other users' Ray, so we kill our own PIDs.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.venv/bin:$PATH"
export RAY_AUTH_MODE=token           # the cluster's token is ~/.ray/auth_token on every node
PORT=6390                            # not the default 6379, to stay clear of other Ray users here
HEAD="$(hostname -I | awk '{print $1}'):$PORT"
OUT=runs/two-node-local
ray_pids() { pgrep -f 'ray/core/src/ray/(gcs|raylet)|ray/_private/(log_monitor|monitor)|ray/dashboard|ray/autoscaler|ray::' | sort; }

before=$(ray_pids || true)
echo "== ray start --head (node 1)"
ray start --head --port=$PORT --num-cpus=1 --include-dashboard=false --disable-usage-stats 2>&1 | grep -E "Ray runtime started|ray start --address" || true
echo "== ray start --address=$HEAD (node 2)"
ray start --address="$HEAD" --num-cpus=1 --disable-usage-stats 2>&1 | grep -E "Ray runtime started" || true
started=$(comm -13 <(echo "$before") <(ray_pids))
stop_cluster() {
  echo "== stopping the $(echo $started | wc -w) processes started above"
  kill $started 2>/dev/null || true
  sleep 10
  kill -9 $started 2>/dev/null || true   # the GCS ignores SIGTERM while its raylets are gone
}
trap stop_cluster EXIT
sleep 3
echo "== ray status"
ray status 2>&1 | sed -n '/Node status/,/Pending:/p;/Resources/,/object_store/p'

echo "== nas search --engine ray --ray-address $HEAD --workers 2"
rm -rf "$OUT"
/usr/bin/time -f "wall %e s" nas search --engine ray --ray-address "$HEAD" --workers 2 --trials 6 \
  --target pixel --budget 25ms --recipe experiments/engines/throughput_recipe.yaml --out "$OUT" --no-progress

echo "== trials per Ray node (study.db user attribute ray_node)"
python - "$OUT" <<'PY'
import collections, sys
import optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.load_study(study_name="nas", storage=f"sqlite:///{sys.argv[1]}/study.db")
by_node = collections.defaultdict(list)
for t in study.trials:
    by_node[t.user_attrs.get("ray_node", "?")[:12]].append(f"{t.number}:{t.user_attrs.get('status')}")
for node, trials in sorted(by_node.items()):
    print(f"node {node}...  {len(trials)} trials  {' '.join(trials)}")
print(f"{len(by_node)} nodes ran trials")
PY
