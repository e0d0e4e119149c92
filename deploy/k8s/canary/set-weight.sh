#!/usr/bin/env bash
# Canary traffic split: give the canary track WEIGHT percent of the requests and the stable
# track the rest (ingress-nginx canary weights).
#
# Usage:
#   deploy/k8s/canary/set-weight.sh [options] WEIGHT    WEIGHT: an integer 0..100
#   deploy/k8s/canary/set-weight.sh [options] status    print "stable=S canary=C"
#
# Options:
#   -n, --namespace NS   namespace of the release (default: the kubectl context's)
#   --dir PATH           work on the Ingress manifests PATH/ingress-stable.yaml and
#                        PATH/ingress-canary.yaml instead of the cluster, in place (e.g.
#                        deploy/k8s/canary, so a later `kubectl apply -k deploy/k8s/canary`
#                        keeps the new split)
#   --dry-run            show the annotated Ingresses, change nothing
#
# 0 sends everything to stable (the canary pods keep running, idle); 100 sends everything to
# the canary (before promoting it, docs/runbooks/promote.md). The canary Ingress gets
# nginx.ingress.kubernetes.io/canary-weight=WEIGHT and churn-mlops/traffic-weight=WEIGHT, the
# stable Ingress churn-mlops/traffic-weight=100-WEIGHT, so the two always add up to 100.
# Exit codes: 0 done, 1 kubectl failed, 2 bad usage.
set -euo pipefail

KUBECTL="${KUBECTL:-kubectl}"
STABLE_INGRESS="churn-serving"
CANARY_INGRESS="churn-serving-canary"
WEIGHT_KEY="churn-mlops/traffic-weight"
CANARY_WEIGHT_KEY="nginx.ingress.kubernetes.io/canary-weight"

namespace=""
dir=""
dry_run=false
weight=""

usage() {
  sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
  echo "set-weight.sh: $1" >&2
  exit "${2:-1}"
}

while [ $# -gt 0 ]; do
  case "$1" in
    -n | --namespace) namespace="${2:?--namespace needs a value}"; shift 2 ;;
    --dir) dir="${2:?--dir needs a value}"; shift 2 ;;
    --dry-run) dry_run=true; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" 2 ;;
    *)
      [ -z "$weight" ] || die "one weight only, got '$weight' and '$1'" 2
      weight="$1"; shift ;;
  esac
done
[ -n "$weight" ] || die "no weight given (expected an integer 0..100 or status; see --help)" 2

ns_args=()
[ -n "$namespace" ] && ns_args=(--namespace "$namespace")

manifest() {  # the file holding Ingress $1 in --dir mode
  if [ "$1" = "$CANARY_INGRESS" ]; then echo "$dir/ingress-canary.yaml"; else echo "$dir/ingress-stable.yaml"; fi
}

read_weight() {  # read_weight INGRESS JSONPATH
  if [ -n "$dir" ]; then
    local path; path="$(manifest "$1")"
    [ -f "$path" ] || die "Ingress manifest '$path' does not exist"
    "$KUBECTL" patch --local -f "$path" --type merge -p '{}' -o "jsonpath=$2"
  else
    "$KUBECTL" "${ns_args[@]}" get ingress "$1" -o "jsonpath=$2"
  fi
}

if [ "$weight" = "status" ]; then
  stable="$(read_weight "$STABLE_INGRESS" '{.metadata.annotations.churn-mlops/traffic-weight}')"
  canary="$(read_weight "$CANARY_INGRESS" '{.metadata.annotations.nginx\.ingress\.kubernetes\.io/canary-weight}')"
  echo "stable=${stable:-?} canary=${canary:-?}"
  exit 0
fi

case "$weight" in
  '' | *[!0-9]*) die "weight '$weight' is not an integer 0..100" 2 ;;
esac
weight=$((10#$weight))
[ "$weight" -le 100 ] || die "weight '$weight' is above 100; expected an integer 0..100" 2
stable_weight=$((100 - weight))

annotate() {  # annotate INGRESS KEY=VALUE...
  local name="$1"; shift
  if [ -n "$dir" ]; then
    local path out tmp
    path="$(manifest "$name")"
    [ -f "$path" ] || die "Ingress manifest '$path' does not exist"
    out="$("$KUBECTL" annotate --local -f "$path" --overwrite "$@" -o yaml)" \
      || die "cannot annotate '$path'"
    if $dry_run; then
      echo "$out"; echo "---"
    else
      tmp="$(mktemp "$path.XXXXXX")"
      chmod --reference="$path" "$tmp" 2>/dev/null || true
      printf '%s\n' "$out" > "$tmp"
      mv "$tmp" "$path"
    fi
  elif $dry_run; then
    "$KUBECTL" "${ns_args[@]}" annotate ingress "$name" --overwrite "$@" --dry-run=server -o yaml
    echo "---"
  else
    "$KUBECTL" "${ns_args[@]}" annotate ingress "$name" --overwrite "$@" >/dev/null \
      || die "cannot annotate Ingress '$name'"
  fi
}

# ingress-nginx routes by the canary Ingress alone; the stable annotation is the record.
annotate "$CANARY_INGRESS" "$CANARY_WEIGHT_KEY=$weight" "$WEIGHT_KEY=$weight"
annotate "$STABLE_INGRESS" "$WEIGHT_KEY=$stable_weight"

if $dry_run; then
  echo "dry run: would set stable=$stable_weight canary=$weight" >&2
else
  echo "traffic split set: stable=$stable_weight canary=$weight"
fi
