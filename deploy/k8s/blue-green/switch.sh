#!/usr/bin/env bash
# Blue-green traffic switch: point the live Service (churn-serving) at the blue or the green
# colour, or back at the colour it served before.
#
# Usage:
#   deploy/k8s/blue-green/switch.sh [options] status   print the live colour
#   deploy/k8s/blue-green/switch.sh [options] blue     send all traffic to blue
#   deploy/k8s/blue-green/switch.sh [options] green    send all traffic to green
#   deploy/k8s/blue-green/switch.sh [options] back     return to the previous colour
#
# Options:
#   -n, --namespace NS   namespace of the release (default: the kubectl context's)
#   --service NAME       live Service name (default: churn-serving)
#   --file PATH          work on a Service manifest file instead of the cluster, in place
#                        (e.g. deploy/k8s/blue-green/live/service.yaml, so a later
#                        `kubectl apply -k deploy/k8s/blue-green` keeps the switched colour)
#   --timeout DURATION   how long to wait for the target colour's rollout (default: 180s)
#   --dry-run            show the patched Service, change nothing
#
# Before switching, the script checks that the target colour's Deployment has finished its
# rollout and has ready pods; the colour it leaves is recorded in the Service annotation
# churn-mlops/previous-colour, which `back` reads. Exit codes: 0 done (or nothing to do),
# 1 kubectl failed or the target colour is not ready, 2 bad usage.
set -euo pipefail

KUBECTL="${KUBECTL:-kubectl}"
COLOUR_KEY="churn-mlops/colour"
PREVIOUS_KEY="churn-mlops/previous-colour"
DEPLOYMENT_PREFIX="churn-serving"

service="churn-serving"
namespace=""
file=""
timeout="180s"
dry_run=false
command=""

usage() {
  sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
  echo "switch.sh: $1" >&2
  exit "${2:-1}"
}

while [ $# -gt 0 ]; do
  case "$1" in
    -n | --namespace) namespace="${2:?--namespace needs a value}"; shift 2 ;;
    --service) service="${2:?--service needs a value}"; shift 2 ;;
    --file) file="${2:?--file needs a value}"; shift 2 ;;
    --timeout) timeout="${2:?--timeout needs a value}"; shift 2 ;;
    --dry-run) dry_run=true; shift ;;
    -h | --help) usage; exit 0 ;;
    blue | green | back | status)
      [ -z "$command" ] || die "one command only, got '$command' and '$1'" 2
      command="$1"; shift ;;
    *) die "unknown argument '$1' (expected status, blue, green, back or an option; see --help)" 2 ;;
  esac
done
[ -n "$command" ] || die "no command given (expected status, blue, green or back; see --help)" 2

ns_args=()
[ -n "$namespace" ] && ns_args=(--namespace "$namespace")

# Read one field of the live Service, from the file or from the cluster.
read_field() {
  local jsonpath="$1"
  if [ -n "$file" ]; then
    [ -f "$file" ] || die "Service manifest '$file' does not exist"
    "$KUBECTL" patch --local -f "$file" --type merge -p '{}' -o "jsonpath=$jsonpath"
  else
    "$KUBECTL" "${ns_args[@]}" get service "$service" -o "jsonpath=$jsonpath"
  fi
}

current="$(read_field "{.spec.selector.churn-mlops/colour}")" \
  || die "cannot read Service '$service'"
case "$current" in
  blue | green) ;;
  *) die "Service '$service' selects colour '$current' under '$COLOUR_KEY'; expected blue or green" ;;
esac

if [ "$command" = "status" ]; then
  echo "$current"
  exit 0
fi

target="$command"
if [ "$command" = "back" ]; then
  target="$(read_field "{.metadata.annotations.churn-mlops/previous-colour}")"
  case "$target" in
    blue | green) ;;
    "") die "Service '$service' has no '$PREVIOUS_KEY' annotation: it was never switched, nothing to go back to" ;;
    *) die "annotation '$PREVIOUS_KEY' of Service '$service' is '$target'; expected blue or green" ;;
  esac
fi

if [ "$target" = "$current" ]; then
  echo "Service '$service' already sends traffic to $current; nothing to do"
  exit 0
fi

# A switch to a colour that cannot serve would be an outage: check it in the cluster first.
if [ -z "$file" ]; then
  deployment="$DEPLOYMENT_PREFIX-$target"
  "$KUBECTL" "${ns_args[@]}" rollout status "deployment/$deployment" --timeout "$timeout" \
    || die "deployment '$deployment' has not finished rolling out; not switching"
  ready="$("$KUBECTL" "${ns_args[@]}" get deployment "$deployment" -o 'jsonpath={.status.readyReplicas}')"
  [ "${ready:-0}" -gt 0 ] || die "deployment '$deployment' has no ready pods; not switching"
fi

patch="{\"metadata\":{\"annotations\":{\"$PREVIOUS_KEY\":\"$current\"}},\
\"spec\":{\"selector\":{\"$COLOUR_KEY\":\"$target\"}}}"

if [ -n "$file" ]; then
  patched="$("$KUBECTL" patch --local -f "$file" --type merge -p "$patch" -o yaml)" \
    || die "cannot patch '$file'"
  if $dry_run; then
    echo "$patched"
  else
    # Write through a temporary file so an interrupted run never leaves half a manifest.
    tmp="$(mktemp "${file}.XXXXXX")"
    chmod --reference="$file" "$tmp" 2>/dev/null || true
    printf '%s\n' "$patched" > "$tmp"
    mv "$tmp" "$file"
  fi
elif $dry_run; then
  "$KUBECTL" "${ns_args[@]}" patch service "$service" --type merge -p "$patch" \
    --dry-run=server -o yaml
else
  "$KUBECTL" "${ns_args[@]}" patch service "$service" --type merge -p "$patch" >/dev/null
fi

if $dry_run; then
  echo "dry run: Service '$service' would switch from $current to $target" >&2
else
  echo "Service '$service' switched from $current to $target (undo: $0${file:+ --file $file} back)"
fi
