# the local Kubernetes cluster (`polysaga cluster up`, skaffold's local profile, tests/cluster): node, runtime, images, skaffold
needs=(cli kubernetes helm nats ferretdb jaeger prometheus cluster-runtime cluster-node coredns
  cluster-images cluster-wheelhouse skaffold)
groups=(tools)

ensure_cluster() { :; }
