# the local Kubernetes cluster (`polysaga cluster up`, skaffold's local profile, tests/cluster): node, runtime, images, skaffold
# Only for the local cluster (`bootstrap.sh cluster`): not part of `all`.
in_all=false
needs=(cli kubernetes helm nats ferretdb jaeger prometheus cluster-runtime cluster-node coredns
  cluster-images cluster-wheelhouse skaffold)
groups=(tools)

ensure_cluster() { :; }
