#!/usr/bin/env bash
# End to end on kind: build both images, load them, install the chart and an S3 server, upload the
# shipped model and data, apply a CPU FineTuneJob, wait for Succeeded, check adapter and manifest in S3.
# Needs docker, kind, kubectl and helm on PATH, and the dev environment (source scripts/env.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CLUSTER="${CLUSTER:-finetune-e2e}"
TAG="e2e-$(git -C "$ROOT" rev-parse --short HEAD)"
cleanup() { [ "${KEEP_CLUSTER:-}" = 1 ] || kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true; kill "${PF:-0}" 2>/dev/null || true; }
trap cleanup EXIT

docker build -f "$ROOT/Dockerfile.operator" -t "finetune-operator:$TAG" "$ROOT"
docker build -f "$ROOT/Dockerfile.trainer" -t "finetune-trainer:$TAG" "$ROOT"
kind create cluster --name "$CLUSTER" --config "$ROOT/tests/e2e/kind-config.yaml" --wait 120s
kind load docker-image --name "$CLUSTER" "finetune-operator:$TAG" "finetune-trainer:$TAG"

helm install ft "$ROOT/charts/finetune-operator" -n finetune-system --create-namespace --wait \
  --set image.repository=finetune-operator --set image.tag="$TAG" --set image.pullPolicy=Never \
  --set trainer.image="finetune-trainer:$TAG" --set trainer.imagePullPolicy=Never --set replicaCount=1

kubectl create namespace e2e
kubectl -n e2e create deployment s3 --image=motoserver/moto:5.1.0 --port=5000
kubectl -n e2e expose deployment s3 --port=9000 --target-port=5000
kubectl -n e2e rollout status deployment/s3 --timeout=180s
kubectl -n e2e create secret generic s3-credentials --from-literal=AWS_ACCESS_KEY_ID=e2e --from-literal=AWS_SECRET_ACCESS_KEY=e2e
kubectl -n e2e port-forward svc/s3 19000:9000 >/dev/null 2>&1 & PF=$!
sleep 3
AWS_ACCESS_KEY_ID=e2e AWS_SECRET_ACCESS_KEY=e2e python "$ROOT/tests/e2e/seed_s3.py" http://127.0.0.1:19000

python - "$ROOT/examples/tweets-lora.yaml" <<'PY' | kubectl -n e2e apply -f -
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
doc["metadata"]["namespace"] = "e2e"
spec = doc["spec"]
spec["s3"]["endpoint"] = "http://s3.e2e:9000"
spec["s3"]["addressingStyle"] = "path"
spec["resources"] = {"gpus": 0, "cpu": "2", "memory": "6Gi"}
spec["dataset"]["maxSamples"] = 2000
print(yaml.safe_dump(doc))
PY
kubectl -n e2e wait ftj/tweets-lora --for=jsonpath='{.status.phase}'=Succeeded --timeout=1800s
kubectl -n e2e get ftj tweets-lora
AWS_ACCESS_KEY_ID=e2e AWS_SECRET_ACCESS_KEY=e2e python "$ROOT/tests/e2e/seed_s3.py" http://127.0.0.1:19000 --check s3://models/out/tweets-lora/
echo "e2e: ok"
