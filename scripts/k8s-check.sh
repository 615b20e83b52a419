#!/usr/bin/env bash
# Renders every kustomize overlay under deploy/k8s/overlays and validates
# each object it renders against the Kubernetes API's schemas, offline and
# strictly: a value of the wrong type, a misspelt or unknown field, an
# unknown kind or apiVersion fails. So a typo in the manifests fails here,
# not at `kubectl apply`. CI runs it (.ci/run).
#
#   scripts/k8s-check.sh
#
# The schemas ship inside PyPI's kubernetes-validate, installed once into a
# venv under ~/.cache/oms. Rendering uses kubectl's built-in kustomize when
# it is v5 or newer, else kustomize built once from its Go module into
# ~/.cache/oms/bin (Debian's kubectl, 1.20, carries kustomize v2, which
# cannot read these overlays).
set -euo pipefail
cd "$(dirname "$0")/.."

# The oldest Kubernetes the manifests are for, and the newest the validator
# knows: an API removed or changed in between fails too.
KUBERNETES_VERSIONS=(1.30.0 1.37.0)
VALIDATOR=kubernetes-validate==1.37.0
KUSTOMIZE_MODULE=sigs.k8s.io/kustomize/kustomize/v5@v5.5.0
CACHE=$HOME/.cache/oms

fail() { printf 'k8s-check: %s\n' "$*" >&2; exit 1; }

venv=$CACHE/kubernetes-validate-${VALIDATOR#*==}
validator=$venv/bin/kubernetes-validate
# The marker is written last, so an interrupted install is made again.
if [[ ! -f $venv/.installed ]]; then
  echo "k8s-check: installing $VALIDATOR into $venv (once)"
  rm -rf "$venv"
  mkdir -p "$CACHE"
  { python3 -m venv "$venv" \
      && "$venv/bin/pip" install -q --disable-pip-version-check "$VALIDATOR" \
      && touch "$venv/.installed"; } >&2 \
    || fail "could not install $VALIDATOR from PyPI into a venv (needs python3 with venv)"
fi

kustomize_major=$(kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\([0-9]*\).*/\1/p' || true)
if [[ ${kustomize_major:-0} -ge 5 ]]; then
  render() { kubectl kustomize "$1"; }
else
  kustomize=$CACHE/bin/kustomize
  if [[ ! -x $kustomize ]]; then
    go=$(command -v go || echo /usr/local/go/bin/go)
    [[ -x $go ]] || fail "no kubectl with kustomize v5, and no Go to build kustomize with"
    echo "k8s-check: building kustomize from $KUSTOMIZE_MODULE into $CACHE/bin (once, about 2 minutes)"
    GOBIN=$CACHE/bin GOPATH=$CACHE/go GOFLAGS=-modcacherw "$go" install "$KUSTOMIZE_MODULE" >&2 \
      || fail "could not build kustomize from $KUSTOMIZE_MODULE"
  fi
  render() { "$kustomize" build "$1"; }
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
versions=()
for version in "${KUBERNETES_VERSIONS[@]}"; do versions+=(-k "$version"); done

failed=()
for overlay in deploy/k8s/overlays/*/; do
  overlay=${overlay%/}
  name=$(basename "$overlay")
  rendered=$tmp/$name.yaml
  if ! render "$overlay" >"$rendered" 2>"$tmp/error"; then
    sed 's/^/  /' "$tmp/error" >&2
    failed+=("$overlay (kustomize)")
    continue
  fi
  # --quiet prints only problems; a schema it does not have (an unknown
  # kind or apiVersion) is only a warning to it, and a failure to us.
  report=$("$validator" --strict --quiet "${versions[@]}" "$rendered" 2>&1) && status=0 || status=$?
  if [[ $status -ne 0 || -n $report ]]; then
    printf '%s\n' "${report//$rendered/$overlay}" | sed 's/^/  /' >&2
    failed+=("$overlay")
    continue
  fi
  objects=$(grep -c '^kind:' "$rendered")
  echo "k8s-check: $overlay: $objects objects valid (strict) against Kubernetes ${KUBERNETES_VERSIONS[*]}"
done

[[ ${#failed[@]} -eq 0 ]] || fail "invalid manifests in ${failed[*]}; see above"
